// The status page's files (src/web/static/), compiled into the binary: the
// page is served by evolive itself, with nothing to install beside it and
// nothing fetched from elsewhere. `/` is index.html; `/ui/NAME` the others.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace evolive::web {

namespace embedded {
struct EmbeddedFile
{
    std::string_view name, bytes;
};
extern const EmbeddedFile files[];
extern const size_t fileCount;
} // namespace embedded

struct StaticFile
{
    std::string_view contentType, bytes;
};

// The file a request path names ("/" or "/ui/app.js"), or false.
bool staticFileFor(std::string_view path, StaticFile & file);

// Headers every page file is sent with: a Content-Security-Policy that lets
// the page run only its own script and talk only to its own server, no
// framing, no sniffing, no caching beyond revalidation.
std::vector<std::pair<std::string, std::string>> staticFileHeaders();

} // namespace evolive::web
