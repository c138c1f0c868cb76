// Writing a JSON value as one line of a stream (job lines, stream
// messages, Redis fields).
#pragma once

#include <nlohmann/json.hpp>

#include <string>

namespace evolive {

// `message` as its line's text (without the newline): compact, with
// invalid UTF-8 replaced rather than an exception.
std::string jsonLine(const nlohmann::json & message);

} // namespace evolive
