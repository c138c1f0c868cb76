#include "static_files.hh"

namespace evolive::web {

namespace {

std::string_view contentTypeOf(std::string_view name)
{
    auto ends = [&](std::string_view ext) { return name.size() >= ext.size() && name.substr(name.size() - ext.size()) == ext; };
    if (ends(".html")) return "text/html; charset=utf-8";
    if (ends(".js")) return "text/javascript; charset=utf-8";
    if (ends(".css")) return "text/css; charset=utf-8";
    if (ends(".svg")) return "image/svg+xml";
    return "application/octet-stream";
}

} // namespace

bool staticFileFor(std::string_view path, StaticFile & file)
{
    std::string_view name;
    if (path == "/") name = "index.html";
    else if (path.substr(0, 4) == "/ui/") name = path.substr(4);
    else return false;
    for (size_t i = 0; i < embedded::fileCount; ++i)
        if (embedded::files[i].name == name) {
            file = {contentTypeOf(name), embedded::files[i].bytes};
            return true;
        }
    return false;
}

std::vector<std::pair<std::string, std::string>> staticFileHeaders()
{
    return {{"Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                                        "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"},
            {"X-Content-Type-Options", "nosniff"},
            {"X-Frame-Options", "DENY"},
            {"Referrer-Policy", "no-referrer"},
            {"Cache-Control", "no-cache"}};
}

} // namespace evolive::web
