#include "stream_reply.hh"

namespace evolive::fleet {

std::vector<StreamEntry> entryList(const RedisReply & list)
{
    std::vector<StreamEntry> entries;
    for (auto & e : list.elements) {
        if (e.type != RedisReply::Type::Array || e.elements.size() < 2 || e.elements[1].type != RedisReply::Type::Array)
            continue;
        StreamEntry entry;
        entry.id = e.elements[0].str;
        auto & kv = e.elements[1].elements;
        for (size_t i = 0; i + 1 < kv.size(); i += 2) entry.fields[kv[i].str] = kv[i + 1].str;
        entries.push_back(std::move(entry));
    }
    return entries;
}

std::vector<NamedEntry> readEntries(const RedisReply & reply)
{
    std::vector<NamedEntry> out;
    for (auto & stream : reply.elements) {
        if (stream.elements.size() < 2) continue;
        for (auto & e : entryList(stream.elements[1])) {
            NamedEntry n;
            static_cast<StreamEntry &>(n) = std::move(e);
            n.stream = stream.elements[0].str;
            out.push_back(std::move(n));
        }
    }
    return out;
}

std::vector<StreamEntry> streamEntries(const RedisReply & reply)
{
    std::vector<StreamEntry> out;
    for (auto & e : readEntries(reply)) out.push_back(std::move(e));
    return out;
}

} // namespace evolive::fleet
