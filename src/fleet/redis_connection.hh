// One connection to Redis (hiredis), for the fleet's stream commands.
// Commands are argument vectors (binary-safe, nothing interpolated); a
// reply is a plain tree. A connection is used by one thread at a time.
#pragma once

#include <chrono>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace evolive::fleet {

// Redis cannot be reached, or a command failed on the connection (it is
// then closed: make a new one). `what` names the command.
struct RedisError : std::runtime_error
{
    using std::runtime_error::runtime_error;
};

struct RedisReply
{
    enum class Type { Nil, String, Integer, Array, Status, Error } type = Type::Nil;
    std::string str;                 // String, Status, Error
    long long integer = 0;           // Integer
    std::vector<RedisReply> elements; // Array

    bool nil() const { return type == Type::Nil; }
};

class RedisConnection
{
public:
    // `url`: redis://HOST[:PORT] or unix:///PATH. `timeout` bounds connecting
    // and each command (a blocking read needs its BLOCK time on top).
    // Throws RedisError.
    explicit RedisConnection(const std::string & url, std::chrono::milliseconds timeout = std::chrono::seconds(5));
    ~RedisConnection();
    RedisConnection(const RedisConnection &) = delete;
    RedisConnection & operator=(const RedisConnection &) = delete;

    // Throws RedisError when the connection fails or Redis answers with an
    // error (unless `errorsAsReplies`).
    RedisReply command(const std::vector<std::string> & args, bool errorsAsReplies = false);

    const std::string & url() const { return url_; }

private:
    std::string url_;
    void * context_ = nullptr; // redisContext
};

// Checks the form of a Redis URL without connecting; throws std::invalid_argument.
void checkRedisUrl(const std::string & url);

} // namespace evolive::fleet
