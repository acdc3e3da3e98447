#include "lab/text.hpp"

#include <fmt/core.h>

namespace lab {

std::string preview(std::string_view bytes, std::size_t max_shown) {
  std::string shown = "\"";
  const std::size_t count = bytes.size() < max_shown ? bytes.size() : max_shown;
  for (std::size_t i = 0; i < count; ++i) {
    const auto byte = static_cast<unsigned char>(bytes[i]);
    switch (byte) {
      case '\n': shown += "\\n"; break;
      case '\r': shown += "\\r"; break;
      case '\t': shown += "\\t"; break;
      case '"': shown += "\\\""; break;
      case '\\': shown += "\\\\"; break;
      default:
        if (byte >= 0x20 && byte < 0x7f) {
          shown += static_cast<char>(byte);
        } else {
          shown += fmt::format("\\x{:02x}", byte);
        }
    }
  }
  shown += "\"";
  if (count < bytes.size()) {
    shown += fmt::format("... ({} bytes)", bytes.size());
  }
  return shown;
}

std::string_view chomp(std::string_view line) {
  if (!line.empty() && line.back() == '\n') {
    line.remove_suffix(1);
    if (!line.empty() && line.back() == '\r') {
      line.remove_suffix(1);
    }
  }
  return line;
}

std::string shell_quote(const std::string& text) {
  if (!text.empty() && text.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                              "0123456789-_./=:,+@%") == std::string::npos) {
    return text;
  }
  std::string quoted = "'";
  for (const char c : text) {
    quoted += c == '\'' ? std::string("'\\''") : std::string(1, c);
  }
  return quoted + "'";
}

}  // namespace lab
