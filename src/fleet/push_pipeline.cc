#include "push_pipeline.hh"

#include <chrono>

namespace evolive::fleet {

using nlohmann::json;

PushPipeline::PushPipeline(cache::Pusher & pusher, size_t threads, size_t queued)
    : pusher_(pusher), queued_(queued ? queued : 1)
{
    for (size_t i = 0; i < (threads ? threads : 1); ++i) threads_.emplace_back([this] { run(); });
}

PushPipeline::~PushPipeline()
{
    {
        std::lock_guard lock(mutex_);
        closing_ = true;
    }
    changed_.notify_all();
    for (auto & t : threads_) t.join();
}

void PushPipeline::add(json job)
{
    std::unique_lock lock(mutex_);
    changed_.wait(lock, [&] { return waiting_.size() < queued_; });
    waiting_.push_back(std::move(job));
    changed_.notify_all();
}

std::vector<json> PushPipeline::takeDone()
{
    std::lock_guard lock(mutex_);
    return std::exchange(done_, {});
}

std::vector<json> PushPipeline::finish()
{
    std::unique_lock lock(mutex_);
    changed_.wait(lock, [&] { return waiting_.empty() && busy_ == 0; });
    return std::exchange(done_, {});
}

void PushPipeline::run()
{
    std::unique_lock lock(mutex_);
    while (true) {
        changed_.wait(lock, [&] { return closing_ || !waiting_.empty(); });
        if (waiting_.empty()) return; // closing, nothing left
        auto job = std::move(waiting_.front());
        waiting_.pop_front();
        ++busy_;
        changed_.notify_all(); // room in the queue
        lock.unlock();
        auto started = std::chrono::steady_clock::now();
        bool failed = false;
        try {
            auto summary = pusher_.push({job["drvPath"].get<std::string>()});
            job["push"] = json{{"uploaded", summary.uploaded.size()}, {"present", summary.present.size()}};
        } catch (std::exception & e) {
            failed = true;
            job["push"] = json{{"error", e.what()}};
        }
        double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
        lock.lock();
        pushSeconds_ += seconds;
        pushErrors_ += failed;
        done_.push_back(std::move(job));
        --busy_;
        changed_.notify_all();
    }
}

} // namespace evolive::fleet
