#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace certctrl {

/// The value of one hex digit (either case), or -1.
int hex_digit(char c);

/// Lower-case hex of the bytes of `bytes`.
std::string hex_encode(std::string_view bytes);

/// Bytes of an even-length hex string (either case); nullopt for anything else.
std::optional<std::string> hex_decode(std::string_view hex);

/// Standard base64 with padding.
std::string base64_encode(std::string_view bytes);

/// Decodes standard or URL-safe base64, with or without padding; nullopt for anything else.
std::optional<std::string> base64_decode(std::string_view text);

/// Decodes %XX escapes (either case); nullopt for a malformed escape. '+' is left as is.
std::optional<std::string> percent_decode(std::string_view s);

/// `s` for one log line: CR and LF as \r and \n, other control characters (and DEL) as \xNN, so text from a
/// CA, a DNS server or a client can never start a forged line. The log formatter applies it to every message.
std::string escape_log_text(std::string_view s);

}  // namespace certctrl
