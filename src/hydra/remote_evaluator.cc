#include "remote_evaluator.hh"

#include "evaluation_writer.hh"
#include "json_parse.hh"
#include "nix_store.hh"

#include <curl/curl.h>

#include <condition_variable>
#include <deque>
#include <exception>
#include <iostream>
#include <mutex>
#include <thread>

namespace evolive::hydra {

using nlohmann::json;

namespace {

// Copies .drv closures from the server's cache into the local store and
// roots them, a batch at a time, on a thread of its own.
class DrvImporter
{
public:
    DrvImporter(std::string cache, std::string rootsDir)
        : cache_(std::move(cache)), rootsDir_(std::move(rootsDir)), thread_([this] { run(); })
    {
    }
    ~DrvImporter()
    {
        stop();
    }
    void add(const std::string & drv)
    {
        std::lock_guard lock(mutex_);
        pending_.push_back(drv);
        all_.push_back(drv);
        wake_.notify_all();
    }
    // Waits for every copy; throws the first failure.
    std::vector<std::string> finish()
    {
        stop();
        if (error_) std::rethrow_exception(error_);
        return all_;
    }

private:
    void stop()
    {
        {
            std::lock_guard lock(mutex_);
            done_ = true;
        }
        wake_.notify_all();
        if (thread_.joinable()) thread_.join();
    }
    void run()
    {
        for (;;) {
            std::vector<std::string> batch;
            {
                std::unique_lock lock(mutex_);
                wake_.wait(lock, [&] { return done_ || !pending_.empty(); });
                if (pending_.empty() && done_) return;
                while (!pending_.empty() && batch.size() < 2000) {
                    batch.push_back(pending_.front());
                    pending_.pop_front();
                }
            }
            if (error_) continue;
            try {
                copyFrom(cache_, batch, true);
                for (auto & drv : batch) registerRoot(rootsDir_, drv);
            } catch (...) {
                error_ = std::current_exception();
            }
        }
    }

    std::string cache_, rootsDir_;
    std::mutex mutex_;
    std::condition_variable wake_;
    std::deque<std::string> pending_;
    std::vector<std::string> all_;
    bool done_ = false;
    std::exception_ptr error_; // written by the thread only, read after it stopped
    std::thread thread_;
};

struct Stream
{
    const JobHandler * onJob = nullptr;
    DrvImporter * importer = nullptr;
    std::string server;
    std::string pending, body;
    bool ended = false;              // `finished` or `failed` came
    std::exception_ptr error;        // what stopped the transfer
    size_t jobs = 0;

    void line(const std::string & text)
    {
        if (text.empty()) return;
        auto message = parseJson(text, "the evolive server's stream");
        auto type = message.value("type", "");
        if (type == "job") {
            ++jobs;
            if (message.contains("push") && message["push"].contains("error"))
                throw EvaluationFailure("the evolive server at " + server + " could not push the derivation of job ‘" +
                                        message.value("attr", "") + "’ to its cache: " +
                                        message["push"]["error"].dump() + "\n");
            if (message.contains("drvPath") && !message.contains("error"))
                importer->add(message["drvPath"].get<std::string>());
            message.erase("type");
            message.erase("push");
            (*onJob)(message);
        } else if (type == "failed") {
            ended = true;
            throw EvaluationFailure("the evaluation on the evolive server at " + server + " failed (" +
                                    message.value("stage", "?") + "): " + message.value("message", "") + "\n");
        } else if (type == "finished") {
            ended = true;
            std::cerr << "evolive server: finished, " << message.value("jobs", 0) << " jobs, "
                      << message.value("errors", 0) << " errors" << (message.value("cached", false) ? " (stored result)" : "")
                      << "\n";
        } else if (type == "started") {
            std::cerr << "evolive server: evaluation " << message.value("fingerprint", "")
                      << (message.value("cached", false) ? " answered from its stored result" : " started") << "\n";
        } else if (type == "queued") {
            std::cerr << "evolive server: waiting, position " << message.value("position", 0) << "\n";
        } else if (type == "joined") {
            std::cerr << "evolive server: joined the running evaluation " << message.value("fingerprint", "") << "\n";
        }
    }
};

size_t onData(char * data, size_t size, size_t n, void * user)
{
    auto & s = *static_cast<Stream *>(user);
    if (s.error) return 0;
    try {
        s.pending.append(data, size * n);
        if (s.body.size() < 65536) s.body.append(data, std::min(size * n, 65536 - s.body.size()));
        size_t start = 0, nl;
        while ((nl = s.pending.find('\n', start)) != std::string::npos) {
            s.line(s.pending.substr(start, nl - start));
            start = nl + 1;
        }
        s.pending.erase(0, start);
    } catch (...) {
        s.error = std::current_exception();
        return 0; // stops the transfer
    }
    return size * n;
}

} // namespace

RemoteEvaluator::RemoteEvaluator(const HydraSettings & settings, json jobset)
    : settings_(settings), jobset_(std::move(jobset))
{
}

void RemoteEvaluator::run(const JobHandler & onJob)
{
    auto server = settings_.server;
    while (!server.empty() && server.back() == '/') server.pop_back();
    DrvImporter importer(settings_.cache, settings_.gcRootsDir);
    Stream stream;
    stream.onJob = &onJob;
    stream.importer = &importer;
    stream.server = server;

    std::unique_ptr<CURL, void (*)(CURL *)> curl(curl_easy_init(), curl_easy_cleanup);
    if (!curl) throw EvaluationFailure("cannot start an HTTP client\n");
    auto body = jobset_.dump();
    auto url = server + "/v1/evaluations";
    curl_slist * headers = curl_slist_append(nullptr, "Content-Type: application/json");
    if (!settings_.token.empty()) headers = curl_slist_append(headers, ("Authorization: Bearer " + settings_.token).c_str());
    std::unique_ptr<curl_slist, void (*)(curl_slist *)> headerList(headers, curl_slist_free_all);
    char errorText[CURL_ERROR_SIZE] = "";
    curl_easy_setopt(curl.get(), CURLOPT_URL, url.c_str());
    curl_easy_setopt(curl.get(), CURLOPT_POSTFIELDS, body.c_str());
    curl_easy_setopt(curl.get(), CURLOPT_POSTFIELDSIZE, (long) body.size());
    curl_easy_setopt(curl.get(), CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(curl.get(), CURLOPT_WRITEFUNCTION, onData);
    curl_easy_setopt(curl.get(), CURLOPT_WRITEDATA, &stream);
    curl_easy_setopt(curl.get(), CURLOPT_ERRORBUFFER, errorText);
    curl_easy_setopt(curl.get(), CURLOPT_CONNECTTIMEOUT, 30L);
    curl_easy_setopt(curl.get(), CURLOPT_NOSIGNAL, 1L);
    // A server that sends nothing for this long is given up.
    curl_easy_setopt(curl.get(), CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(curl.get(), CURLOPT_LOW_SPEED_TIME, (long) settings_.serverTimeout.count());
    std::cerr << "evaluating on the evolive server at " << server << "\n";
    auto code = curl_easy_perform(curl.get());
    long status = 0;
    curl_easy_getinfo(curl.get(), CURLINFO_RESPONSE_CODE, &status);

    if (stream.error) std::rethrow_exception(stream.error);
    if (status != 0 && status != 200) {
        auto answer = json::parse(stream.body, nullptr, false);
        std::string reason = answer.is_object() && answer.contains("error") ? answer["error"].dump() : stream.body;
        throw EvaluationFailure("the evolive server at " + server + " refused the evaluation (HTTP " +
                                std::to_string(status) + "): " + reason + "\n");
    }
    if (code != CURLE_OK)
        throw EvaluationFailure("the evolive server at " + server + " could not be read: " +
                                (errorText[0] ? errorText : curl_easy_strerror(code)) +
                                (stream.jobs ? " (after " + std::to_string(stream.jobs) + " jobs)" : "") + "\n");
    if (!stream.ended)
        throw EvaluationFailure("the evolive server at " + server + " closed the stream before the evaluation "
                                "finished (after " + std::to_string(stream.jobs) + " jobs)\n");

    auto drvs = importer.finish();
    auto missing = invalidPaths(drvs);
    if (!missing.empty())
        throw EvaluationFailure(std::to_string(missing.size()) + " derivations, e.g. " + *missing.begin() +
                                ", are not in the local store after copying them from " + settings_.cache + "\n");
    std::cerr << "copied the .drv closures of " << drvs.size() << " jobs from " << settings_.cache << "\n";
}

} // namespace evolive::hydra
