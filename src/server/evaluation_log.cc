#include "evaluation_log.hh"

namespace evolive::server {

void EvaluationLog::append(std::string line, bool job)
{
    {
        std::lock_guard lock(mutex_);
        lines_.push_back({std::move(line), job});
    }
    changed_.notify_all();
}

void EvaluationLog::appendJobs(std::vector<std::string> lines)
{
    {
        std::lock_guard lock(mutex_);
        for (auto & line : lines) lines_.push_back({std::move(line), true});
    }
    changed_.notify_all();
}

void EvaluationLog::close()
{
    {
        std::lock_guard lock(mutex_);
        closed_ = true;
    }
    changed_.notify_all();
}

EvaluationLog::Batch EvaluationLog::read(size_t from, size_t maxBytes)
{
    std::unique_lock lock(mutex_);
    changed_.wait(lock, [&] { return from < lines_.size() || closed_; });
    Batch batch;
    size_t i = from;
    for (; i < lines_.size() && (i == from || batch.data.size() + lines_[i].text.size() < maxBytes); ++i) {
        batch.data += lines_[i].text;
        batch.data += '\n';
    }
    batch.next = i;
    batch.end = closed_ && i == lines_.size();
    return batch;
}

std::string EvaluationLog::jobs()
{
    std::lock_guard lock(mutex_);
    std::string out;
    for (auto & line : lines_)
        if (line.job) out += line.text + "\n";
    return out;
}

} // namespace evolive::server
