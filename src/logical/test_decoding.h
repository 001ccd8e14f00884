// The decoder for test_decoding, the output plugin stagesync uses (decision
// 0011): it ships with the server (contrib), needs no publication, and so can
// never make the desktop application's UPDATE or DELETE fail.
//
// Its output is one text line per message (with include-xids and
// include-timestamp on, skip-empty-xacts on):
//   BEGIN 734
//   table public.jobs: INSERT: id[integer]:1 name[text]:'it''s' note[text]:null
//   table public.jobs: UPDATE: old-key: id[integer]:1 new-tuple: id[integer]:2 ...
//   table public.jobs: UPDATE: id[integer]:1 ...        (no old key in the WAL)
//   table public.jobs: DELETE: id[integer]:1            (the old key)
//   table public.jobs: DELETE: (no-tuple-data)          (no old key in the WAL)
//   table public.a, public.b: TRUNCATE: (no-flags)
//   COMMIT 734 (at 2026-12-06 20:30:00.123456+00)
// Values are the type's text output; test_decoding quotes all but numbers
// (integer, oid, float, numeric: bare), booleans (true/false: returned as the
// server's t/f) and bit strings (B'0101'); NULL is a bare `null`; an old key
// omits NULL columns. Relation and column names are quoted identifiers when
// they need to be.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "logical/change.h"
#include "logical/replication_connection.h"

namespace stagesync::logical {

inline constexpr const char* kPlugin = "test_decoding";
// The options every stagesync stream asks for.
PluginOptions test_decoding_options();

struct BeginMessage {
  uint32_t xid = 0;
};
struct CommitMessage {
  uint32_t xid = 0;
  std::string commit_time;
};
// A TRUNCATE of several tables is one message: one Change per table.
struct ChangeMessage {
  std::vector<Change> changes;
};
// Messages of pg_logical_emit_message and anything else not about rows.
struct OtherMessage {};

using DecodedMessage = std::variant<BeginMessage, CommitMessage, ChangeMessage, OtherMessage>;

// Parses one message. Throws DecodeError naming the text when it is not in
// the format above.
DecodedMessage parse_test_decoding(std::string_view line);

}  // namespace stagesync::logical
