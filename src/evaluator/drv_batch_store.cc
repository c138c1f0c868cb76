// The parts of the batching store that do not touch Nix: how a .drv's text
// travels between processes, and the order in which a batch is written.
#include "drv_batch_store.hh"

#include <functional>
#include <set>

namespace evolive {

using nlohmann::json;

namespace {

// Whether `s` is UTF-8 that a JSON string can carry.
bool isUtf8(std::string_view s)
{
    for (size_t i = 0; i < s.size();) {
        auto c = (unsigned char) s[i];
        size_t n = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xe ? 3 : (c >> 3) == 0x1e ? 4 : 0;
        if (n == 0 || i + n > s.size()) return false;
        for (size_t k = 1; k < n; ++k)
            if (((unsigned char) s[i + k] >> 6) != 0x2) return false;
        i += n;
    }
    return true;
}

} // namespace

json drvTextMessage(const std::string & text)
{
    if (isUtf8(text)) return text;
    static const char digits[] = "0123456789abcdef";
    std::string hex;
    for (unsigned char c : text) hex += {digits[c >> 4], digits[c & 0xf]};
    return json{{"hex", hex}};
}

std::string drvTextOf(const json & message)
{
    if (message.is_string()) return message.get<std::string>();
    auto hex = message.at("hex").get<std::string>();
    std::string text;
    for (size_t i = 0; i + 1 < hex.size(); i += 2) text += (char) std::stoi(hex.substr(i, 2), nullptr, 16);
    return text;
}

std::vector<std::string> referencesFirst(const std::map<std::string, std::vector<std::string>> & references)
{
    std::vector<std::string> order;
    std::set<std::string> visited;
    std::function<void(const std::string &)> visit = [&](const std::string & path) {
        if (!visited.insert(path).second) return;
        for (auto & ref : references.at(path))
            if (references.count(ref)) visit(ref);
        order.push_back(path);
    };
    for (auto & [path, _] : references) visit(path);
    return order;
}

} // namespace evolive
