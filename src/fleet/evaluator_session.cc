#include "evaluator_session.hh"

#include "channel.hh"
#include "fd_io.hh"

#include <nlohmann/json.hpp>
#include <stdexcept>
#include <system_error>

namespace evolive::fleet {

using nlohmann::json;

EvaluatorSession::EvaluatorSession(std::string fingerprint, std::string key, ProcessSpec spec, std::string logPath)
    : fingerprint_(std::move(fingerprint)), key_(std::move(key)), logPath_(std::move(logPath))
{
    spec.stdinPipe = true;
    process_ = startEvaluator(spec, logPath_);
    reader_ = std::make_unique<LineReader>(process_->stdoutFd());
}

EvaluatorSession::~EvaluatorSession() = default;

void EvaluatorSession::kill()
{
    usable_ = false;
    process_->kill();
}

void EvaluatorSession::evaluate(const json & paths, const JobSink & sink)
{
    if (!usable_) throw std::runtime_error("the evaluator was stopped");
    usable_ = false; // until the evaluator says it is done with these paths
    size_t request = ++requests_;
    try {
        writeAll(process_->stdinFd(), paths.dump() + "\n", "writing to the evaluator");
    } catch (std::system_error &) {
        // It is gone; its exit is read below.
    }
    while (auto line = reader_->readLine()) {
        auto message = json::parse(*line, nullptr, false);
        if (message.is_discarded() || !message.is_object()) continue; // not a job line; it is in the log
        if (!message.contains("pathsDone")) {
            sink(std::move(message));
            continue;
        }
        if (message["pathsDone"] != request)
            throw std::runtime_error("the evaluator answered request " + message["pathsDone"].dump() + ", expected " +
                                     std::to_string(request));
        if (message.contains("error")) throw std::runtime_error(message["error"].get<std::string>());
        usable_ = true;
        return;
    }
    process_->closeStdin();
    throw std::runtime_error(evaluatorFailure(process_->wait(), logPath_));
}

} // namespace evolive::fleet
