#include "service_client.hh"

#include <arpa/inet.h>
#include <chrono>
#include <curl/curl.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <fstream>
#include <signal.h>
#include <sstream>
#include <stdexcept>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

namespace evolive::test {

using nlohmann::json;

EvoliveServer::EvoliveServer(const std::string & stateDir, const std::vector<std::string> & args,
                             const std::map<std::string, std::string> & env, const std::vector<std::string> & wrapper)
{
    logFile_ = stateDir + ".server.log";
    std::vector<std::string> argv = wrapper;
    argv.insert(argv.end(), {EVOLIVE_BINARY, "serve", "--listen", "127.0.0.1:0", "--state-dir", stateDir});
    argv.insert(argv.end(), args.begin(), args.end());
    pid_ = fork();
    if (pid_ == 0) {
        int fd = open(logFile_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
        dup2(fd, 1);
        dup2(fd, 2);
        for (auto & [k, v] : env) setenv(k.c_str(), v.c_str(), 1);
        std::vector<char *> cargv;
        for (auto & a : argv) cargv.push_back(const_cast<char *>(a.c_str()));
        cargv.push_back(nullptr);
        execvp(cargv[0], cargv.data());
        _exit(127);
    }
    bool up = eventually(
        [&] {
            auto text = log();
            auto at = text.find("listening on http://");
            if (at == std::string::npos) return waitpid(pid_, nullptr, WNOHANG) != 0; // exited: give up
            url_ = text.substr(at + 13, text.find_first_of(" \n", at + 13) - at - 13);
            return true;
        },
        std::chrono::seconds(30));
    if (!up || url_.empty()) throw std::runtime_error("evolive serve did not start:\n" + log());
}

EvoliveServer::~EvoliveServer()
{
    kill(pid_, SIGTERM);
    waitpid(pid_, nullptr, 0);
}

std::string EvoliveServer::log() const
{
    std::ifstream in(logFile_);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

namespace {

struct Transfer
{
    std::string body, pending;
    std::vector<json> lines;
    std::function<bool(const json &)> onLine;
    bool hungUp = false;
};

size_t collect(char * data, size_t size, size_t n, void * user)
{
    auto & t = *static_cast<Transfer *>(user);
    t.body.append(data, size * n);
    if (!t.onLine) return size * n;
    t.pending.append(data, size * n);
    for (size_t nl; (nl = t.pending.find('\n')) != std::string::npos;) {
        auto line = json::parse(t.pending.substr(0, nl), nullptr, false);
        t.pending.erase(0, nl + 1);
        t.lines.push_back(line);
        if (t.onLine && !t.onLine(line)) {
            t.hungUp = true;
            return 0; // ends the transfer: the client hangs up
        }
    }
    return size * n;
}

HttpResponse perform(const std::string & method, const std::string & url, const std::string & body,
                     const std::vector<std::string> & headers, Transfer & transfer)
{
    CURL * curl = curl_easy_init();
    curl_slist * list = nullptr;
    bool typed = false;
    for (auto & h : headers) {
        list = curl_slist_append(list, h.c_str());
        typed = typed || h.rfind("Content-Type:", 0) == 0;
    }
    if (!body.empty() && !typed) list = curl_slist_append(list, "Content-Type: application/json");
    list = curl_slist_append(list, "Expect:");
    curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
    curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method.c_str());
    if (!body.empty() || method == "POST") {
        curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body.c_str());
        curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE, (long) body.size());
    }
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, list);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &transfer);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT, 300L);
    auto rc = curl_easy_perform(curl);
    HttpResponse r;
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &r.status);
    char * type = nullptr;
    curl_easy_getinfo(curl, CURLINFO_CONTENT_TYPE, &type);
    if (type) r.contentType = type;
    curl_slist_free_all(list);
    curl_easy_cleanup(curl);
    if (rc != CURLE_OK && !transfer.hungUp)
        throw std::runtime_error(method + " " + url + ": " + curl_easy_strerror(rc));
    r.body = transfer.body;
    return r;
}

} // namespace

HttpResponse httpRequest(const std::string & method, const std::string & url, const std::string & body,
                         const std::vector<std::string> & headers)
{
    Transfer transfer;
    return perform(method, url, body, headers, transfer);
}

std::vector<json> streamLines(const std::string & url, const std::string & body,
                              const std::function<bool(const json &)> & onLine, const std::vector<std::string> & headers,
                              long * status)
{
    Transfer transfer;
    transfer.onLine = onLine ? onLine : [](const json &) { return true; };
    auto r = perform("POST", url, body, headers, transfer);
    if (status) *status = r.status;
    return transfer.lines;
}

std::string hostPort(const std::string & url)
{
    auto start = url.find("://") + 3;
    return url.substr(start, url.find('/', start) - start);
}

int connectTo(const std::string & url, int receiveBuffer, const std::string & fromAddress)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) throw std::runtime_error("socket failed");
    if (receiveBuffer) setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &receiveBuffer, sizeof receiveBuffer);
    if (!fromAddress.empty()) {
        sockaddr_in from{};
        from.sin_family = AF_INET;
        inet_pton(AF_INET, fromAddress.c_str(), &from.sin_addr);
        if (bind(fd, (sockaddr *) &from, sizeof from) != 0) throw std::runtime_error("cannot bind to " + fromAddress);
    }
    auto hp = hostPort(url);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(std::stoi(hp.substr(hp.rfind(':') + 1)));
    inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
    if (connect(fd, (sockaddr *) &addr, sizeof addr) != 0) {
        close(fd);
        throw std::runtime_error("cannot connect to " + url);
    }
    return fd;
}

void sendAll(int fd, const std::string & data)
{
    for (size_t off = 0; off < data.size();) {
        auto n = ::send(fd, data.data() + off, data.size() - off, MSG_NOSIGNAL);
        if (n <= 0) throw std::runtime_error("send failed");
        off += n;
    }
}

std::string readAll(int fd, std::chrono::milliseconds timeout, bool * closed)
{
    std::string out;
    char buf[65536];
    if (closed) *closed = false;
    while (true) {
        pollfd p{fd, POLLIN, 0};
        if (poll(&p, 1, (int) timeout.count()) <= 0) return out; // nothing for `timeout`
        auto n = ::read(fd, buf, sizeof buf);
        if (n <= 0) break; // closed (or reset)
        out.append(buf, n);
    }
    if (closed) *closed = true;
    return out;
}

int RawExchange::status() const
{
    if (response.rfind("HTTP/1.", 0) != 0 || response.size() < 12) return 0;
    return std::stoi(response.substr(9, 3));
}

RawExchange rawRequest(const std::string & url, const std::string & request, std::chrono::milliseconds timeout)
{
    int fd = connectTo(url);
    RawExchange exchange;
    try {
        sendAll(fd, request);
    } catch (std::exception &) {
        // The server may close before taking all of a large request:
        // what it answered is still there to read.
    }
    exchange.response = readAll(fd, timeout, &exchange.closed);
    close(fd);
    return exchange;
}

std::map<std::string, double> readMetrics(const std::string & baseUrl)
{
    std::map<std::string, double> metrics;
    std::istringstream in(httpRequest("GET", baseUrl + "/metrics").body);
    for (std::string line; std::getline(in, line);) {
        if (line.empty() || line[0] == '#') continue;
        auto space = line.rfind(' ');
        metrics[line.substr(0, space)] = std::stod(line.substr(space + 1));
    }
    return metrics;
}

bool eventually(const std::function<bool()> & condition, std::chrono::seconds timeout)
{
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
        if (condition()) return true;
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return condition();
}

json fileJobset(const std::string & dir, const std::string & file, const std::map<std::string, std::string> & strings)
{
    json inputs{{"src", {{"type", "path"}, {"path", dir}}}};
    for (auto & [name, value] : strings) inputs[name] = {{"type", "string"}, {"value", value}};
    return {{"inputs", inputs}, {"expression", {{"input", "src"}, {"path", file}}}};
}

} // namespace evolive::test
