// GET /v1/evaluations/{fingerprint}/log: the evaluation's log, streamed
// from its file a piece at a time (a log can be hundreds of megabytes):
// all of it, its end (`?tail=BYTES`), or one byte range (`Range: bytes=A-B`,
// `A-`, `-N`; RFC 9110 §14).
#include "api.hh"

#include "query.hh"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace evolive::server {

namespace {

struct ByteRange
{
    uint64_t first = 0, length = 0;
};

enum class RangeAnswer { Whole, Part, Unsatisfiable };

std::optional<uint64_t> decimal(beast::string_view s)
{
    if (s.empty() || s.size() > 18 || s.find_first_not_of("0123456789") != beast::string_view::npos) return std::nullopt;
    return std::stoull(std::string(s.data(), s.size()));
}

// A Range header the server cannot use (another unit, several ranges,
// nonsense) is ignored, as RFC 9110 allows: the whole log is sent.
RangeAnswer parseRange(beast::string_view value, uint64_t size, ByteRange & range)
{
    if (value.substr(0, 6) != "bytes=" || value.find(',') != beast::string_view::npos) return RangeAnswer::Whole;
    auto spec = value.substr(6);
    auto dash = spec.find('-');
    if (dash == beast::string_view::npos) return RangeAnswer::Whole;
    auto first = decimal(spec.substr(0, dash)), last = decimal(spec.substr(dash + 1));
    if (dash == 0) { // the last N bytes
        if (!last) return RangeAnswer::Whole;
        if (*last == 0 || size == 0) return RangeAnswer::Unsatisfiable;
        range.length = std::min(*last, size);
        range.first = size - range.length;
        return RangeAnswer::Part;
    }
    if (!first || (dash + 1 < spec.size() && (!last || *last < *first))) return RangeAnswer::Whole;
    if (*first >= size) return RangeAnswer::Unsatisfiable;
    range.first = *first;
    range.length = std::min(last.value_or(size - 1), size - 1) - *first + 1;
    return RangeAnswer::Part;
}

} // namespace

void Api::log(Connection & c, const Request & request, const std::string & fingerprint, const std::string & query)
{
    const std::string text = "text/plain; charset=utf-8";
    auto tailValue = web::queryValue(query, "tail");
    auto tail = tailValue ? decimal(beast::string_view(*tailValue)) : std::nullopt;
    if (tailValue && !tail) return (void) c.error(http::status::bad_request, "tail: a number of bytes");
    auto rangeHeader = request[http::field::range];
    if (tail && !rangeHeader.empty()) return (void) c.error(http::status::bad_request, "give either tail or Range, not both");

    int fd = ::open(logPathFor(config_.stateDir, fingerprint).c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return (void) c.error(http::status::not_found, "no log for fingerprint " + fingerprint);
    struct Close
    {
        int fd;
        ~Close() { ::close(fd); }
    } closeLater{fd};
    struct stat info;
    if (fstat(fd, &info) != 0) throw std::runtime_error("cannot read the log of " + fingerprint);
    // What the file holds now; a running evaluation's log grows meanwhile.
    uint64_t size = info.st_size;
    std::vector<std::pair<std::string, std::string>> headers{{"Accept-Ranges", "bytes"}};

    if (tail) {
        auto length = std::min(*tail, size);
        c.respondFile(http::status::ok, text, fd, size - length, length, headers);
        return;
    }
    ByteRange range;
    switch (parseRange(rangeHeader, size, range)) {
    case RangeAnswer::Whole: c.respondFile(http::status::ok, text, fd, 0, size, headers); break;
    case RangeAnswer::Part:
        headers.emplace_back("Content-Range", "bytes " + std::to_string(range.first) + "-" +
                                                  std::to_string(range.first + range.length - 1) + "/" + std::to_string(size));
        c.respondFile(http::status::partial_content, text, fd, range.first, range.length, headers);
        break;
    case RangeAnswer::Unsatisfiable:
        c.addHeader("Content-Range", "bytes */" + std::to_string(size));
        c.error(http::status::range_not_satisfiable, "the range is outside the log's " + std::to_string(size) + " bytes");
        break;
    }
}

} // namespace evolive::server
