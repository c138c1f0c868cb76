// A request's query string (`search=gnu%20hello&limit=50`): values by key,
// percent-decoded, `+` as a space.
#pragma once

#include <optional>
#include <string>

namespace evolive::web {

// The value of the first `key=...`, or nullopt when the key is absent.
std::optional<std::string> queryValue(const std::string & query, const std::string & key);

// A number value within [0, max]: `fallback` when absent; throws
// std::invalid_argument naming the key when it is not a number.
size_t queryNumber(const std::string & query, const std::string & key, size_t fallback, size_t max);

} // namespace evolive::web
