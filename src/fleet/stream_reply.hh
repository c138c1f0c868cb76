// Stream entries out of the replies of XREAD, XREADGROUP, XRANGE, XCLAIM
// and XAUTOCLAIM.
#pragma once

#include "protocol.hh"
#include "redis_connection.hh"

#include <vector>

namespace evolive::fleet {

// XREAD/XREADGROUP: [[stream, [[id, [field, value, ...]], ...]], ...] or nil;
// the entries of every stream, in order. A stream name is in `stream`.
struct NamedEntry : StreamEntry
{
    std::string stream;
};
std::vector<NamedEntry> readEntries(const RedisReply & reply);

// The entries of one stream read: XREAD of a single stream.
std::vector<StreamEntry> streamEntries(const RedisReply & reply);

// A list of [id, [field, value, ...]] (XRANGE, XCLAIM, XAUTOCLAIM's second
// element); deleted entries (nil) are left out.
std::vector<StreamEntry> entryList(const RedisReply & list);

} // namespace evolive::fleet
