#include "s3_cache.hh"

#include "hash.hh"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <curl/curl.h>
#include <fstream>
#include <memory>
#include <random>
#include <sys/stat.h>
#include <thread>
#include <unistd.h>

namespace evolive::cache {

namespace {

std::string xmlField(const std::string & xml, const std::string & tag)
{
    auto open = xml.find("<" + tag + ">");
    if (open == std::string::npos) return "";
    open += tag.size() + 2;
    auto close = xml.find("</" + tag + ">", open);
    return close == std::string::npos ? "" : xml.substr(open, close - open);
}

// The five entities XML escapes text with (keys and tokens in listings).
std::string xmlText(const std::string & escaped)
{
    std::string out;
    for (size_t i = 0; i < escaped.size(); ++i) {
        if (escaped[i] == '&') {
            static const std::pair<const char *, char> entities[] = {
                {"&amp;", '&'}, {"&lt;", '<'}, {"&gt;", '>'}, {"&quot;", '"'}, {"&apos;", '\''}};
            bool replaced = false;
            for (auto & [entity, c] : entities)
                if (escaped.compare(i, strlen(entity), entity) == 0) {
                    out += c;
                    i += strlen(entity) - 1;
                    replaced = true;
                    break;
                }
            if (replaced) continue;
        }
        out += escaped[i];
    }
    return out;
}

// `2024-05-01T12:34:56.000Z` as seconds since the epoch; 0 when malformed.
int64_t parseIsoTime(const std::string & s)
{
    std::tm tm{};
    if (sscanf(s.c_str(), "%d-%d-%dT%d:%d:%d", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour, &tm.tm_min,
               &tm.tm_sec) != 6)
        return 0;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    return (int64_t) timegm(&tm);
}

std::string escapeQueryValue(const std::string & value)
{
    char * escaped = curl_escape(value.c_str(), (int) value.size());
    std::string out = escaped;
    curl_free(escaped);
    return out;
}

// "HTTP 403 SignatureDoesNotMatch: <S3's message>", from an error answer.
std::string httpError(long status, const std::string & body)
{
    auto code = xmlField(body, "Code"), message = xmlField(body, "Message");
    return "HTTP " + std::to_string(status) + (code.empty() ? "" : " " + code) + (message.empty() ? "" : ": " + message);
}

size_t onBody(char * data, size_t size, size_t n, void * userdata)
{
    static_cast<std::string *>(userdata)->append(data, size * n);
    return size * n;
}

// A 2xx body into a file, anything else (an error document) into memory.
struct BodySink
{
    CURL * curl;
    std::FILE * file;
    std::string * body;
    int writeErrno = 0;
};

size_t onBodyToFile(char * data, size_t size, size_t n, void * userdata)
{
    auto * s = static_cast<BodySink *>(userdata);
    long status = 0;
    curl_easy_getinfo(s->curl, CURLINFO_RESPONSE_CODE, &status);
    if (status >= 200 && status < 300) {
        if (std::fwrite(data, 1, size * n, s->file) != size * n) {
            s->writeErrno = errno ? errno : EIO;
            return 0; // libcurl stops with CURLE_WRITE_ERROR
        }
        return size * n;
    }
    s->body->append(data, size * n);
    return size * n;
}

size_t onHeader(char * data, size_t size, size_t n, void * userdata)
{
    std::string line(data, size * n);
    auto colon = line.find(':');
    if (colon != std::string::npos) {
        auto name = line.substr(0, colon);
        for (auto & c : name) c = (char) std::tolower((unsigned char) c);
        auto value = line.substr(colon + 1);
        while (!value.empty() && (value.front() == ' ')) value.erase(0, 1);
        while (!value.empty() && (value.back() == '\r' || value.back() == '\n')) value.pop_back();
        (*static_cast<std::map<std::string, std::string> *>(userdata))[name] = value;
    }
    return size * n;
}

struct ReadState
{
    std::string_view data;
    size_t pos = 0;
};

size_t onRead(char * buffer, size_t size, size_t n, void * userdata)
{
    auto * s = static_cast<ReadState *>(userdata);
    size_t take = std::min(size * n, s->data.size() - s->pos);
    memcpy(buffer, s->data.data() + s->pos, take);
    s->pos += take;
    return take;
}

} // namespace

S3Location S3Location::take(StoreUrl & url)
{
    if (url.kind() != StoreUrl::Kind::S3) throw std::invalid_argument("not an S3 URL (s3://BUCKET?...): " + url.text());
    S3Location loc;
    loc.bucket = url.location();
    auto bad = [&](const std::string & what) { throw std::invalid_argument(what + " in '" + url.text() + "'"); };
    if (auto region = url.take("region", {"aws-region"})) loc.region = *region;
    if (auto profile = url.take("profile")) loc.profile = *profile;
    auto scheme = url.take("scheme");
    if (scheme && *scheme != "http" && *scheme != "https") bad("scheme must be http or https, not '" + *scheme + "'");
    if (auto endpoint = url.take("endpoint"); endpoint && !endpoint->empty()) {
        // Nix's form is HOST[:PORT] with `scheme`; evolive's, and Nix's
        // newer one, a URL.
        auto colon = endpoint->find("://");
        if (colon == std::string::npos) {
            loc.endpoint = scheme.value_or("https") + "://" + *endpoint;
        } else {
            if (scheme && endpoint->substr(0, colon) != *scheme)
                bad("scheme=" + *scheme + " contradicts the endpoint's scheme (" + *endpoint + ")");
            if (endpoint->substr(0, colon) != "http" && endpoint->substr(0, colon) != "https")
                bad("the endpoint must be http:// or https://");
            loc.endpoint = *endpoint;
        }
    } else if (scheme) {
        loc.scheme = *scheme;
    }
    while (!loc.endpoint.empty() && loc.endpoint.back() == '/') loc.endpoint.pop_back();
    // With an endpoint, path-style (as Nix's `auto`); AWS virtual-hosted.
    loc.pathStyle = !loc.endpoint.empty();
    auto addressing = url.take("addressing");
    auto style = url.take("addressing-style");
    if (addressing && style) bad("addressing and addressing-style are the same setting: give one");
    if (addressing && *addressing != "path" && *addressing != "virtual") bad("addressing must be path or virtual");
    if (style && *style != "auto" && *style != "path" && *style != "virtual")
        bad("addressing-style must be auto, path or virtual");
    auto chosen = addressing ? *addressing : style.value_or("auto");
    if (chosen != "auto") loc.pathStyle = chosen == "path";
    if (auto threshold = url.takeCount("multipart-threshold")) loc.multipartThreshold = *threshold;
    if (auto part = url.takeCount("part-size", {"multipart-chunk-size", "buffer-size"})) loc.partSize = *part;
    if (auto multipart = url.takeBool("multipart-upload"); multipart && !*multipart)
        loc.multipartThreshold = SIZE_MAX; // one PUT per file, as Nix without it
    if (auto retries = url.takeCount("retries")) {
        if (*retries > 100) bad("retries must be at most 100");
        loc.retries = (int) *retries;
    }
    if (loc.partSize == 0) bad("part-size must be positive");
    return loc;
}

std::string S3Location::objectUrl(const std::string & key) const
{
    std::string base = endpoint.empty() ? scheme + "://s3." + region + ".amazonaws.com" : endpoint;
    if (pathStyle) return base + "/" + bucket + "/" + key;
    auto scheme = base.find("://");
    return base.substr(0, scheme + 3) + bucket + "." + base.substr(scheme + 3) + "/" + key;
}

S3Credentials S3Credentials::find(const std::string & profileName)
{
    S3Credentials c;
    if (const char * id = getenv("AWS_ACCESS_KEY_ID"); id && profileName.empty()) {
        const char * secret = getenv("AWS_SECRET_ACCESS_KEY");
        if (!secret) throw S3Error("AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is not");
        c.accessKeyId = id;
        c.secretAccessKey = secret;
        if (const char * token = getenv("AWS_SESSION_TOKEN")) c.sessionToken = token;
        return c;
    }
    std::string profile = !profileName.empty() ? profileName : getenv("AWS_PROFILE") ? getenv("AWS_PROFILE") : "default";
    std::string file = getenv("AWS_SHARED_CREDENTIALS_FILE")
                           ? getenv("AWS_SHARED_CREDENTIALS_FILE")
                           : std::string(getenv("HOME") ? getenv("HOME") : "") + "/.aws/credentials";
    std::ifstream in(file);
    std::string line, section;
    while (std::getline(in, line)) {
        auto trim = [](std::string s) {
            while (!s.empty() && isspace((unsigned char) s.back())) s.pop_back();
            while (!s.empty() && isspace((unsigned char) s.front())) s.erase(0, 1);
            return s;
        };
        line = trim(line);
        if (line.empty() || line[0] == '#' || line[0] == ';') continue;
        if (line.front() == '[' && line.back() == ']') {
            section = trim(line.substr(1, line.size() - 2));
            continue;
        }
        auto eq = line.find('=');
        if (section != profile || eq == std::string::npos) continue;
        auto k = trim(line.substr(0, eq)), v = trim(line.substr(eq + 1));
        if (k == "aws_access_key_id") c.accessKeyId = v;
        if (k == "aws_secret_access_key") c.secretAccessKey = v;
        if (k == "aws_session_token") c.sessionToken = v;
    }
    if (c.accessKeyId.empty() || c.secretAccessKey.empty())
        throw S3Error("no S3 credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or profile '" + profile +
                      "' in " + file);
    return c;
}

S3Cache::S3Cache(S3Location location, S3Credentials credentials, Role role, CacheInfo info)
    : location_(std::move(location)), credentials_(std::move(credentials))
{
    static bool initialised = (curl_global_init(CURL_GLOBAL_DEFAULT), true);
    (void) initialised;
    if (role == Role::BinaryCache && !exists("nix-cache-info")) put("nix-cache-info", info.render(), "text/x-nix-cache-info");
}

S3Cache::~S3Cache()
{
    for (auto * h : idleHandles_) curl_easy_cleanup((CURL *) h);
}

void * S3Cache::acquireHandle()
{
    {
        std::lock_guard lock(handlesMutex_);
        if (!idleHandles_.empty()) {
            auto * h = idleHandles_.back();
            idleHandles_.pop_back();
            return h;
        }
    }
    auto * h = curl_easy_init();
    if (!h) throw S3Error("cannot initialise libcurl");
    return h;
}

void S3Cache::releaseHandle(void * handle)
{
    std::lock_guard lock(handlesMutex_);
    idleHandles_.push_back(handle);
}

std::string S3Cache::describe() const
{
    return "s3://" + location_.bucket + " (" + location_.objectUrl("") + ")";
}

S3Cache::Response S3Cache::request(const std::string & method, const std::string & key, const std::string & query,
                                   std::string_view body, const std::string & contentType, std::FILE * sink)
{
    auto * curl = (CURL *) acquireHandle();
    struct Release
    {
        S3Cache * self;
        void * handle;
        ~Release() { self->releaseHandle(handle); }
    } release{this, curl};
    std::string url = location_.objectUrl(key);
    // The bucket itself (a listing): path-style without the trailing slash,
    // which s3rver leaves out of the signed path (AWS takes either).
    if (key.empty() && location_.pathStyle && url.back() == '/') url.pop_back();
    url += query.empty() ? "" : "?" + query;
    std::string sigv4 = "aws:amz:" + location_.region + ":s3";
    std::string userpwd = credentials_.accessKeyId + ":" + credentials_.secretAccessKey;
    // libcurl's SigV4 does not add the payload hash header; S3 needs it.
    std::string payloadHash = "x-amz-content-sha256: " + nix::sha256Hex(body);
    std::mt19937 random{std::random_device{}()};

    for (int attempt = 0;; ++attempt) {
        Response response;
        ReadState reader{body};
        BodySink bodySink{curl, sink, &response.body};
        if (sink) { // a retry starts the file over
            std::fflush(sink);
            if (ftruncate(fileno(sink), 0) != 0) throw S3Error(std::string("cannot truncate a download: ") + strerror(errno));
            std::rewind(sink);
        }
        curl_easy_reset(curl);
        struct curl_slist * headers = nullptr;
        headers = curl_slist_append(headers, payloadHash.c_str());
        if (!contentType.empty()) headers = curl_slist_append(headers, ("Content-Type: " + contentType).c_str());
        if (!credentials_.sessionToken.empty())
            headers = curl_slist_append(headers, ("x-amz-security-token: " + credentials_.sessionToken).c_str());
        curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
        curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
        curl_easy_setopt(curl, CURLOPT_AWS_SIGV4, sigv4.c_str());
        curl_easy_setopt(curl, CURLOPT_USERPWD, userpwd.c_str());
        if (sink) {
            curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, onBodyToFile);
            curl_easy_setopt(curl, CURLOPT_WRITEDATA, &bodySink);
        } else {
            curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, onBody);
            curl_easy_setopt(curl, CURLOPT_WRITEDATA, &response.body);
        }
        curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, onHeader);
        curl_easy_setopt(curl, CURLOPT_HEADERDATA, &response.headers);
        curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, 10L);
        curl_easy_setopt(curl, CURLOPT_LOW_SPEED_LIMIT, 1L);
        curl_easy_setopt(curl, CURLOPT_LOW_SPEED_TIME, 30L);
        curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
        if (method == "HEAD") {
            curl_easy_setopt(curl, CURLOPT_NOBODY, 1L);
        } else if (method == "PUT") {
            curl_easy_setopt(curl, CURLOPT_UPLOAD, 1L);
            curl_easy_setopt(curl, CURLOPT_READFUNCTION, onRead);
            curl_easy_setopt(curl, CURLOPT_READDATA, &reader);
            curl_easy_setopt(curl, CURLOPT_INFILESIZE_LARGE, (curl_off_t) body.size());
        } else if (method == "POST") {
            curl_easy_setopt(curl, CURLOPT_POST, 1L);
            curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body.data());
            curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t) body.size());
        } else {
            curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method.c_str());
        }
        CURLcode code = curl_easy_perform(curl);
        curl_slist_free_all(headers);
        curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &response.status);
        if (bodySink.writeErrno) // the local disk, not the server: no retry
            throw S3Error(method + " " + url + ": cannot write the download: " + strerror(bodySink.writeErrno));

        bool transient = code != CURLE_OK || response.status >= 500 || response.status == 429;
        if (!transient) {
            if ((response.status >= 200 && response.status < 300) || ((method == "HEAD" || method == "GET") && response.status == 404))
                return response;
            throw S3Error(method + " " + url + ": " + httpError(response.status, response.body));
        }
        if (attempt >= location_.retries) {
            throw S3Error(method + " " + url + ": " +
                          (code != CURLE_OK ? std::string(curl_easy_strerror(code)) : "HTTP " + std::to_string(response.status)) +
                          " (gave up after " + std::to_string(attempt + 1) + " attempts)");
        }
        // Exponential backoff with jitter: 100 ms, 200 ms, 400 ms, ...
        auto base = std::chrono::milliseconds(100 << std::min(attempt, 6));
        std::uniform_int_distribution<int> jitter(0, (int) base.count() / 2);
        std::this_thread::sleep_for(base + std::chrono::milliseconds(jitter(random)));
    }
}

bool S3Cache::exists(const std::string & key)
{
    return request("HEAD", key, "", {}, "").status != 404;
}

void S3Cache::put(const std::string & key, std::string_view data, const std::string & contentType)
{
    // An S3 PUT is atomic: the object appears whole or not at all.
    if (data.size() > location_.multipartThreshold)
        return putMultipart(
            key, data.size(), [&](uint64_t offset, size_t length) { return std::string(data.substr(offset, length)); },
            contentType);
    request("PUT", key, "", data, contentType);
}

void S3Cache::putFile(const std::string & key, const std::string & path, const std::string & contentType)
{
    std::unique_ptr<std::FILE, int (*)(std::FILE *)> file(std::fopen(path.c_str(), "rbe"), std::fclose);
    if (!file) throw S3Error("cannot read " + path + ": " + strerror(errno));
    struct stat st;
    if (fstat(fileno(file.get()), &st) != 0) throw S3Error("cannot read " + path + ": " + strerror(errno));
    auto read = [&](uint64_t offset, size_t length) {
        std::string chunk(length, '\0');
        errno = 0;
        if (pread(fileno(file.get()), chunk.data(), length, (off_t) offset) != (ssize_t) length)
            throw S3Error("cannot read " + path + ": " + (errno ? strerror(errno) : "it is shorter than it was"));
        return chunk;
    };
    if ((uint64_t) st.st_size > location_.multipartThreshold)
        return putMultipart(key, st.st_size, read, contentType);
    request("PUT", key, "", read(0, st.st_size), contentType);
}

bool S3Cache::get(const std::string & key, const std::string & path)
{
    std::unique_ptr<std::FILE, int (*)(std::FILE *)> file(std::fopen(path.c_str(), "wbe"), std::fclose);
    if (!file) throw S3Error("cannot write " + path + ": " + strerror(errno));
    try {
        auto r = request("GET", key, "", {}, "", file.get());
        if (r.status == 404) {
            if (xmlField(r.body, "Code") == "NoSuchBucket")
                throw S3Error("GET " + location_.objectUrl(key) + ": " + httpError(r.status, r.body));
            file.reset();
            unlink(path.c_str());
            return false;
        }
        if (std::fflush(file.get()) != 0 || fsync(fileno(file.get())) != 0 || std::fclose(file.release()) != 0)
            throw S3Error("cannot write " + path + ": " + strerror(errno));
        return true;
    } catch (...) {
        file.reset();
        unlink(path.c_str());
        throw;
    }
}

std::optional<std::vector<std::string>> S3Cache::narinfoKeys(size_t limit)
{
    // nix-cache-info and any other file at the root count against the
    // limit too: a few more keys than `limit` are asked for.
    size_t ask = limit > SIZE_MAX - 16 ? SIZE_MAX : limit + 16;
    auto objects = list("", ask, "/");
    if (objects.size() > ask) return std::nullopt;
    std::vector<std::string> keys;
    for (auto & o : objects)
        if (o.key.ends_with(".narinfo")) {
            if (keys.size() == limit) return std::nullopt;
            keys.push_back(std::move(o.key));
        }
    return keys;
}

std::vector<S3Object> S3Cache::list(const std::string & prefix, size_t limit, const std::string & delimiter)
{
    std::vector<S3Object> objects;
    std::string token;
    for (;;) {
        // Parameters sorted and their values percent-encoded, as SigV4's
        // canonical query wants: libcurl 7.88 signs the query as given.
        std::string query;
        if (!token.empty()) query += "continuation-token=" + escapeQueryValue(token) + "&";
        if (!delimiter.empty()) query += "delimiter=" + escapeQueryValue(delimiter) + "&";
        query += "list-type=2";
        if (!prefix.empty()) query += "&prefix=" + escapeQueryValue(prefix);
        auto r = request("GET", "", query, {}, "");
        if (r.status == 404)
            throw S3Error("GET " + location_.objectUrl("") + "?" + query + ": " + httpError(r.status, r.body));
        for (size_t at = 0; (at = r.body.find("<Contents>", at)) != std::string::npos;) {
            auto end = r.body.find("</Contents>", at);
            if (end == std::string::npos) break;
            auto entry = r.body.substr(at, end - at);
            S3Object object;
            object.key = xmlText(xmlField(entry, "Key"));
            object.modified = parseIsoTime(xmlField(entry, "LastModified"));
            object.bytes = strtoull(xmlField(entry, "Size").c_str(), nullptr, 10);
            objects.push_back(std::move(object));
            at = end;
        }
        if (xmlField(r.body, "IsTruncated") != "true" || objects.size() > limit) break;
        token = xmlText(xmlField(r.body, "NextContinuationToken"));
        if (token.empty()) throw S3Error("listing " + describe() + ": a truncated answer without NextContinuationToken");
    }
    return objects;
}

void S3Cache::putMultipart(const std::string & key, uint64_t size,
                           const std::function<std::string(uint64_t offset, size_t length)> & part,
                           const std::string & contentType)
{
    auto started = request("POST", key, "uploads=", {}, contentType);
    auto uploadId = xmlField(started.body, "UploadId");
    if (uploadId.empty()) throw S3Error("POST " + key + "?uploads: no UploadId in the answer");
    auto id = escapeQueryValue(uploadId);
    try {
        std::string complete = "<CompleteMultipartUpload>";
        int number = 1;
        for (uint64_t offset = 0; offset < size; offset += location_.partSize, ++number) {
            auto chunk = part(offset, std::min<uint64_t>(location_.partSize, size - offset));
            auto r = request("PUT", key, "partNumber=" + std::to_string(number) + "&uploadId=" + id, chunk, "");
            complete += "<Part><PartNumber>" + std::to_string(number) + "</PartNumber><ETag>" + r.headers["etag"] +
                        "</ETag></Part>";
        }
        complete += "</CompleteMultipartUpload>";
        auto done = request("POST", key, "uploadId=" + id, complete, "application/xml");
        // S3 can answer 200 with an error in the body.
        if (done.body.find("<Error>") != std::string::npos)
            throw S3Error("completing the upload of " + key + ": " + xmlField(done.body, "Message"));
    } catch (...) {
        try {
            request("DELETE", key, "uploadId=" + id, {}, "");
        } catch (...) {
        }
        throw;
    }
}

} // namespace evolive::cache
