// Showing bytes to a person.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace lab {

// A quoted, escaped, shortened view of bytes for log lines:
// preview("hi\n") == "\"hi\\n\"", and a long payload ends in "... (70000 bytes)".
std::string preview(std::string_view bytes, std::size_t max_shown = 60);

// `text` as one word for a POSIX shell: as it is when it is plain
// (letters, digits, -_./=:,+@%), else in single quotes: 'it'\''s'.
std::string shell_quote(const std::string& text);

// Removes one trailing "\n" or "\r\n".
std::string_view chomp(std::string_view line);

}  // namespace lab
