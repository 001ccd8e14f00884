#include "stage/copy_chain.h"

#include <memory>
#include <stdexcept>

#include "pg/copy_stream.h"

namespace stagesync::stage {

void CopyChain::run(pg::Connection& target) {
  std::vector<Copy> copies = std::move(copies_);
  copies_.clear();
  if (copies.empty()) return;
  std::string message;
  for (const Copy& c : copies) {
    message += c.copy_in + ";\n";
    for (const auto& a : c.after) message += a + ";\n";
  }
  std::unique_ptr<pg::CopyIn> in;
  for (const Copy& c : copies) {
    if (!in) {
      in = std::make_unique<pg::CopyIn>(target, message);
    } else if (!in->next()) {
      throw std::logic_error("copy chain: the server ended the message early");
    }
    int64_t rows = c.fill(*in);
    if (c.done) c.done(rows, in->after());
  }
}

}  // namespace stagesync::stage
