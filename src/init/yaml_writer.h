// The configuration file `stagesync init` writes: YAML that config::load_config
// reads back to the draft's decisions, with each decision's reason as a
// comment, and what was left out commented out with its reason. The text
// depends on the draft alone (same catalogs, same file, byte for byte).
#pragma once

#include <string>

#include "init/config_draft.h"

namespace stagesync::init {

std::string write_yaml(const ConfigDraft& draft);

// A name or value as a YAML scalar: plain when that reads back as the same
// string, else double-quoted with escapes (mixed case is plain; spaces,
// `:`/`#`/`[`, reserved words such as `null` or `yes`, leading digits are quoted).
std::string yaml_scalar(const std::string& s);

}  // namespace stagesync::init
