#include "run/config_source.h"

#include <fstream>
#include <sstream>

namespace stagesync::run {

const config::Config* ConfigSource::current(std::string& problem, std::string& note) {
  std::ifstream in(path_);
  std::stringstream ss;
  ss << in.rdbuf();
  std::string text = in ? ss.str() : std::string();
  if (!in || text != text_ || !good_) {
    try {
      if (!in) throw config::ConfigError({path_ + ": cannot read the configuration file"});
      config::Config c = config::parse_config(text, path_);
      config::check_environment(c);
      if (good_) note = "configuration " + path_ + " changed: reloaded";
      good_ = std::move(c);
      text_ = text;
      broken_.clear();
    } catch (const config::ConfigError& e) {
      broken_ = e.what();
      text_ = text;
    }
  }
  if (!broken_.empty()) {
    if (!good_) {
      problem = broken_;
      return nullptr;
    }
    note = "configuration " + path_ + " is broken, the last good version stays in use until it is fixed: " + broken_;
  }
  return &*good_;
}

}  // namespace stagesync::run
