// Small text utilities shared by every module: UTF-8 validation, ids, base64url, trimming.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace mlaas {

// True when `s` is well-formed UTF-8 (no overlongs, no surrogates, max U+10FFFF).
bool IsValidUtf8(std::string_view s);

// Random RFC 4122 version-4 UUID, lower-case ("0751bf4c-95f7-4463-bc47-dd901561e1df").
std::string NewUuid();
bool IsUuid(std::string_view s);

// URL-safe base64 without padding, for opaque paging tokens.
std::string Base64UrlEncode(std::string_view data);
std::optional<std::string> Base64UrlDecode(std::string_view text);
// Standard base64 (RFC 4648 section 4, "+/" with "=" padding; the URL alphabet "-_" and missing
// padding accepted too; whitespace skipped; a "data:...;base64," prefix skipped). nullopt for
// any other character or a dangling bit count.
std::optional<std::string> Base64Decode(std::string_view text);

std::string_view Trim(std::string_view s);
std::vector<std::string> Split(std::string_view s, char sep);
// The parts with `sep` between them.
std::string Join(const std::vector<std::string>& parts, std::string_view sep);
bool StartsWith(std::string_view s, std::string_view prefix);
std::string ToLower(std::string_view s);

// Parses a whole string as a signed 64-bit integer; nullopt on any stray character.
std::optional<int64_t> ParseInt(std::string_view s);

// The longest prefix of `s` of at most `max_bytes` that ends at a character's start (at most
// three continuation bytes are stepped back over), so a valid UTF-8 text stays valid when cut.
std::string_view Utf8Prefix(std::string_view s, size_t max_bytes);
// `s` cut to Utf8Prefix(s, max_bytes), "..." marking a cut; `s` itself when it fits.
std::string Utf8Cut(std::string_view s, size_t max_bytes);

// The byte length of the character at `s[i]` when it is one that breaks a line, drives a
// terminal or reorders the text shown around it: a C0 control, DEL, a C1 control (U+0080-U+009F:
// NEL, an 8-bit CSI), U+2028/U+2029, or a bidi embedding, override or isolate (U+202A-U+202E,
// U+2066-U+2069: "abc<U+202E>gnp.exe" shows as "abcexe.png"); 0 for any other character. All but
// C0 and DEL are read as UTF-8.
size_t ControlCharBytes(std::string_view s, size_t i);

// `s` with every control character (ControlCharBytes) written as \xNN escapes, and, when `s` is
// not valid UTF-8, every byte from 0x80 too; other bytes (a backslash too) stay. Every log line
// goes through it (InitLogging), so no message can forge a line or drive a terminal.
std::string EscapeControlCharacters(std::string_view s);

// `s` safe for one log line: control characters (a decoded %0A, ESC sequences) and invalid
// UTF-8 bytes become \xNN escapes, and at most `max_bytes` are kept ("..." marks a cut).
std::string EscapeForLog(std::string_view s, size_t max_bytes = 512);

// `text` with every occurrence of `path` (a server directory) replaced by `replacement`.
std::string RedactPath(std::string text, std::string_view path, std::string_view replacement);

// Human-readable byte size ("1.5 MiB").
std::string FormatBytes(uint64_t bytes);

}  // namespace mlaas
