#include "config_file.hh"

#include <cctype>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <vector>

namespace evolive::hydra {

namespace fs = std::filesystem;

std::optional<std::string> ConfigSection::get(const std::string & key) const
{
    auto i = values.find(key);
    if (i == values.end()) return std::nullopt;
    return i->second;
}

std::string ConfigSection::get(const std::string & key, const std::string & fallback) const
{
    return get(key).value_or(fallback);
}

const ConfigSection * ConfigSection::section(const std::string & name) const
{
    auto i = sections.find(name);
    return i == sections.end() ? nullptr : i->second.get();
}

namespace {

constexpr int maxIncludeDepth = 16;

std::string trim(const std::string & s)
{
    size_t b = 0, e = s.size();
    while (b < e && std::isspace((unsigned char) s[b])) ++b;
    while (e > b && std::isspace((unsigned char) s[e - 1])) --e;
    return s.substr(b, e - b);
}

// The line without its comment: `#` starts one unless escaped as `\#`.
std::string stripComment(const std::string & line)
{
    std::string out;
    for (size_t i = 0; i < line.size(); ++i) {
        if (line[i] == '\\' && i + 1 < line.size() && line[i + 1] == '#') {
            out += '#';
            ++i;
        } else if (line[i] == '#') {
            break;
        } else {
            out += line[i];
        }
    }
    return out;
}

std::string unquote(const std::string & value)
{
    if (value.size() >= 2 && value.front() == '"' && value.back() == '"') return value.substr(1, value.size() - 2);
    return value;
}

bool startsWithWord(const std::string & line, const std::string & word)
{
    if (line.size() <= word.size() || !std::isspace((unsigned char) line[word.size()])) return false;
    for (size_t i = 0; i < word.size(); ++i)
        if (std::tolower((unsigned char) line[i]) != word[i]) return false;
    return true;
}

void merge(ConfigSection & into, const ConfigSection & from)
{
    for (auto & [k, v] : from.values) into.values[k] = v;
    for (auto & [name, sub] : from.sections) {
        auto & target = into.sections[name];
        if (!target) target = std::make_shared<ConfigSection>();
        merge(*target, *sub);
    }
}

class Parser
{
public:
    Parser(std::string path, int depth) : path_(std::move(path)), depth_(depth) {}

    void parse(const std::string & text, ConfigSection & root)
    {
        std::vector<std::string> lines;
        std::istringstream in(text);
        for (std::string l; std::getline(in, l);) {
            if (!l.empty() && l.back() == '\r') l.pop_back();
            lines.push_back(l);
        }

        struct Open { std::string name; ConfigSection * section; size_t line; };
        std::vector<Open> stack{{"", &root, 0}};
        bool inCComment = false;

        for (size_t i = 0; i < lines.size(); ++i) {
            size_t lineNo = i + 1;
            std::string raw = lines[i];
            if (inCComment) {
                if (raw.find("*/") != std::string::npos) inCComment = false;
                continue;
            }
            if (trim(raw).rfind("/*", 0) == 0) {
                inCComment = trim(raw).find("*/") == std::string::npos;
                continue;
            }
            // A backslash at the end joins the next line.
            std::string line = stripComment(raw);
            while (!trim(line).empty() && trim(line).back() == '\\' && i + 1 < lines.size()) {
                line = trim(line);
                line.pop_back();
                auto next = stripComment(lines[++i]);
                line += next.substr(std::min(next.size(), next.find_first_not_of(" \t")));
            }
            line = trim(line);
            if (line.empty()) continue;
            auto & current = *stack.back().section;

            if (line.rfind("<<", 0) == 0 && line.size() > 4 && line.substr(line.size() - 2) == ">>") {
                auto inner = trim(line.substr(2, line.size() - 4));
                if (!startsWithWord(inner, "include")) fail(lineNo, "unexpected '" + line + "'");
                include(trim(inner.substr(7)), current, lineNo);
                continue;
            }
            if (line.rfind("</", 0) == 0) {
                if (line.back() != '>') fail(lineNo, "malformed block end '" + line + "'");
                auto name = trim(line.substr(2, line.size() - 3));
                if (stack.size() == 1) fail(lineNo, "'" + line + "' closes no block");
                if (name != stack.back().name)
                    fail(lineNo, "'" + line + "' does not close <" + stack.back().name + "> (line " +
                                     std::to_string(stack.back().line) + ")");
                stack.pop_back();
                continue;
            }
            if (line.front() == '<') {
                if (line.back() != '>') fail(lineNo, "malformed block start '" + line + "'");
                auto inner = trim(line.substr(1, line.size() - 2));
                if (inner.empty()) fail(lineNo, "a block without a name");
                auto space = inner.find_first_of(" \t");
                auto name = inner.substr(0, space);
                auto & slot = current.sections[name];
                if (!slot) slot = std::make_shared<ConfigSection>();
                ConfigSection * section = slot.get();
                if (space != std::string::npos) {
                    // <a b>: the block `b` inside `a`, closed by </a>.
                    auto & sub = section->sections[unquote(trim(inner.substr(space)))];
                    if (!sub) sub = std::make_shared<ConfigSection>();
                    section = sub.get();
                }
                stack.push_back({name, section, lineNo});
                continue;
            }
            if (startsWithWord(line, "include")) {
                include(trim(line.substr(7)), current, lineNo);
                continue;
            }

            auto keyEnd = line.find_first_of(" \t=");
            auto key = line.substr(0, keyEnd);
            std::string value = keyEnd == std::string::npos ? "" : trim(line.substr(keyEnd));
            if (!value.empty() && value.front() == '=') value = trim(value.substr(1));
            if (value.rfind("<<", 0) == 0 && value.size() > 2) {
                // A here-document up to a line holding only the marker.
                auto marker = trim(value.substr(2));
                std::string body;
                bool closed = false;
                while (++i < lines.size()) {
                    if (trim(lines[i]) == marker) {
                        closed = true;
                        break;
                    }
                    body += (body.empty() ? "" : "\n") + lines[i];
                }
                if (!closed) fail(lineNo, "here-document '" + marker + "' is never closed");
                value = body;
            } else {
                value = unquote(value);
            }
            current.values[key] = value;
        }
        if (stack.size() > 1)
            fail(stack.back().line, "<" + stack.back().name + "> is never closed");
    }

private:
    [[noreturn]] void fail(size_t line, const std::string & what) const
    {
        throw ConfigError(path_ + ":" + std::to_string(line) + ": " + what);
    }

    void include(const std::string & target, ConfigSection & into, size_t lineNo)
    {
        if (target.empty()) fail(lineNo, "include without a file");
        if (depth_ >= maxIncludeDepth) fail(lineNo, "includes nested deeper than " + std::to_string(maxIncludeDepth));
        fs::path file = unquote(target);
        if (file.is_relative()) file = fs::path(path_).parent_path() / file;
        ConfigSection included;
        Parser(file.string(), depth_ + 1).parse(read(file.string(), path_ + ":" + std::to_string(lineNo)), included);
        merge(into, included);
    }

public:
    static std::string read(const std::string & path, const std::string & from)
    {
        std::ifstream in(path, std::ios::binary);
        if (!in) throw ConfigError((from.empty() ? "" : from + ": ") + "cannot read " + path);
        std::ostringstream s;
        s << in.rdbuf();
        return s.str();
    }

private:
    std::string path_;
    int depth_;
};

} // namespace

ConfigSection parseConfigText(const std::string & text, const std::string & path)
{
    ConfigSection root;
    Parser(path, 0).parse(text, root);
    return root;
}

ConfigSection parseConfigFile(const std::string & path)
{
    return parseConfigText(Parser::read(path, ""), path);
}

} // namespace evolive::hydra
