#include "jobset.hh"

#include <filesystem>
#include <regex>
#include <set>

namespace evolive {

using nlohmann::json;

namespace {

[[noreturn]] void fail(const std::string & where, const std::string & what)
{
    throw JobsetError(where + ": " + what);
}

void onlyFields(const json & object, const std::string & where, std::set<std::string> allowed)
{
    for (auto & [key, _] : object.items())
        if (!allowed.count(key)) {
            std::string list;
            for (auto & a : allowed) list += (list.empty() ? "" : ", ") + a;
            fail(where + "." + key, "unknown field (expected one of: " + list + ")");
        }
}

const json & requireField(const json & object, const std::string & where, const std::string & key)
{
    if (!object.contains(key)) fail(where, "missing field '" + key + "'");
    return object.at(key);
}

std::string requireString(const json & object, const std::string & where, const std::string & key)
{
    auto & v = requireField(object, where, key);
    if (!v.is_string()) fail(where + "." + key, "must be a string, not " + std::string(v.type_name()));
    return v.get<std::string>();
}

bool optionalBool(const json & object, const std::string & where, const std::string & key, bool fallback)
{
    if (!object.contains(key)) return fallback;
    auto & v = object.at(key);
    if (!v.is_boolean()) fail(where + "." + key, "must be true or false, not " + std::string(v.type_name()));
    return v.get<bool>();
}

size_t optionalCount(const json & object, const std::string & where, const std::string & key, size_t fallback)
{
    if (!object.contains(key)) return fallback;
    auto & v = object.at(key);
    // Parsed text gives unsigned numbers; a document built in C++ signed ones.
    bool positive = v.is_number_unsigned() ? v.get<uint64_t>() > 0 : v.is_number_integer() && v.get<int64_t>() > 0;
    if (!positive) fail(where + "." + key, "must be a positive whole number");
    return v.get<size_t>();
}

// The largest options.maxMemorySize: 1 TiB. The evaluator's hard limit is
// twice it, in bytes; far larger values wrapped around to 0 bytes.
constexpr size_t maxMemoryMiBLimit = 1 << 20;

// Nix strings end at a NUL, and so do paths in every system call: a string
// with one would be checked with one meaning and used with another.
// Refuses a NUL in any string or object key of `value`, naming where.
void refuseNulBytes(const json & value, const std::string & where)
{
    auto hasNul = [](const std::string & s) { return s.find('\0') != std::string::npos; };
    if (value.is_string() && hasNul(value.get_ref<const std::string &>()))
        fail(where, "must not contain a NUL byte");
    if (value.is_array())
        for (size_t i = 0; i < value.size(); ++i) refuseNulBytes(value[i], where + "[" + std::to_string(i) + "]");
    if (value.is_object())
        for (auto & [key, member] : value.items()) {
            if (hasNul(key)) fail(where, "a key must not contain a NUL byte");
            refuseNulBytes(member, where + "." + key);
        }
}

// One spelling for one directory: "/srv/x/", "/srv//x" and "/srv/./x" are
// "/srv/x", so that they give one fingerprint.
std::string normalPath(const std::filesystem::path & path)
{
    auto normal = path.lexically_normal().string();
    while (normal.size() > 1 && normal.back() == '/') normal.pop_back();
    return normal;
}

bool parseBoolParam(const std::string & where, const std::string & value)
{
    if (value == "1" || value == "true") return true;
    if (value == "0" || value == "false") return false;
    fail(where, "must be 0, 1, true or false, not '" + value + "'");
}

bool isCommitHash(const std::string & rev)
{
    static const std::regex hex("^([0-9a-f]{40}|[0-9a-f]{64})$");
    return std::regex_match(rev, hex);
}

} // namespace

std::string percentDecode(const std::string & s, const std::string & where)
{
    std::string out;
    for (size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '%' && i + 2 < s.size() && isxdigit(s[i + 1]) && isxdigit(s[i + 2])) {
            out += (char) std::stoi(s.substr(i + 1, 2), nullptr, 16);
            i += 2;
        } else if (s[i] == '%') {
            fail(where, "malformed percent-encoding");
        } else {
            out += s[i];
        }
    }
    return out;
}

namespace {

JobsetInput parseGitInput(const json & spec, const std::string & where)
{
    onlyFields(spec, where, {"type", "url", "ref", "rev", "shallow", "submodules"});
    auto url = requireString(spec, where, "url");
    if (url.find(' ') != std::string::npos)
        fail(where + ".url", "'" + url + "' looks like a Hydra-style \"URL branch\" value; write the branch as a "
                             "query parameter instead, e.g. \"git+https://example.org/repo.git?ref=main\"");
    JobsetInput input;
    input.type = InputType::Git;
    input.git = parseGitUrl(url);
    if (spec.contains("ref")) input.git.ref = requireString(spec, where, "ref");
    if (spec.contains("rev")) input.git.rev = requireString(spec, where, "rev");
    input.git.shallow = optionalBool(spec, where, "shallow", input.git.shallow);
    input.git.submodules = optionalBool(spec, where, "submodules", input.git.submodules);
    if (!input.git.ref.empty() && !isSafeRef(input.git.ref))
        fail(where + ".ref", "'" + input.git.ref + "' is not a valid git ref name");
    if (!input.git.rev.empty() && !isCommitHash(input.git.rev))
        fail(where + ".rev", "'" + input.git.rev + "' is not a full commit hash (40 or 64 lowercase hex digits)");
    return input;
}

JobsetInput parseInput(const json & spec, const std::string & where, const std::string & baseDir)
{
    if (!spec.is_object()) fail(where, "an input must be an object with a \"type\"");
    auto type = requireString(spec, where, "type");
    if (type == "git") return parseGitInput(spec, where);

    JobsetInput input;
    if (type == "path") {
        onlyFields(spec, where, {"type", "path"});
        input.type = InputType::Path;
        input.path = requireString(spec, where, "path");
        if (input.path.empty()) fail(where + ".path", "must not be empty");
        if (!std::filesystem::path(input.path).is_absolute()) {
            if (baseDir.empty()) fail(where + ".path", "must be an absolute path");
            input.path = (std::filesystem::path(baseDir) / input.path).string();
        }
        input.path = normalPath(input.path);
        return input;
    }
    onlyFields(spec, where, {"type", "value"});
    auto & value = requireField(spec, where, "value");
    input.value = value;
    if (type == "nix") {
        input.type = InputType::Nix;
        if (!value.is_string()) fail(where + ".value", "a nix input's value is the expression, as a string");
    } else if (type == "json") {
        input.type = InputType::Json;
    } else if (type == "string") {
        input.type = InputType::String;
        if (!value.is_string()) fail(where + ".value", "must be a string");
    } else if (type == "boolean") {
        input.type = InputType::Boolean;
        if (!value.is_boolean()) fail(where + ".value", "must be true or false");
    } else {
        fail(where + ".type", "unknown input type '" + type + "' (expected git, path, nix, json, string or boolean)");
    }
    return input;
}

bool isInputName(const std::string & name)
{
    static const std::regex ident("^[A-Za-z_][A-Za-z0-9_'-]*$");
    return std::regex_match(name, ident);
}

} // namespace

std::string inputTypeName(InputType type)
{
    switch (type) {
    case InputType::Git: return "git";
    case InputType::Path: return "path";
    case InputType::Nix: return "nix";
    case InputType::Json: return "json";
    case InputType::String: return "string";
    case InputType::Boolean: return "boolean";
    }
    return "?";
}

bool isSafeRef(const std::string & ref)
{
    if (ref.empty() || ref[0] == '-' || ref[0] == '/' || ref.back() == '/' || ref.back() == '.') return false;
    if (ref.find("..") != std::string::npos || ref.find("@{") != std::string::npos || ref.find("//") != std::string::npos)
        return false;
    if (ref.size() >= 5 && ref.compare(ref.size() - 5, 5, ".lock") == 0) return false;
    for (unsigned char c : ref)
        if (c < 0x21 || c == 0x7f || std::string("~^:?*[\\").find(c) != std::string::npos) return false;
    return true;
}

GitSource parseGitUrl(const std::string & original)
{
    const std::string where = "git URL '" + original + "'";
    std::string url = original;
    if (url.rfind("git+", 0) == 0) url = url.substr(4);
    auto colon = url.find("://");
    // git's remote helpers (`ext::COMMAND` runs a command, `fd::N` talks
    // over a file descriptor): named, so that the refusal is clear.
    auto helper = url.find("::");
    if (helper != std::string::npos && helper < colon)
        fail(where, "transport '" + url.substr(0, helper + 2) + "' is refused (only https, http, ssh, git and file)");
    if (colon == std::string::npos)
        fail(where, "not a URL (expected git+https://, git+http://, git+ssh://, git://, or git+file://)");
    auto scheme = url.substr(0, colon);
    static const std::set<std::string> transports{"https", "http", "ssh", "git", "file"};
    if (!transports.count(scheme))
        fail(where, "transport '" + scheme + "' is refused (only https, http, ssh, git and file)");

    GitSource source;
    auto query = url.find('?');
    if (query != std::string::npos) {
        std::string params = url.substr(query + 1);
        url = url.substr(0, query);
        size_t start = 0;
        while (start <= params.size()) {
            auto end = params.find('&', start);
            auto pair = params.substr(start, end == std::string::npos ? std::string::npos : end - start);
            if (!pair.empty()) {
                auto eq = pair.find('=');
                auto key = pair.substr(0, eq);
                auto value = eq == std::string::npos ? "" : percentDecode(pair.substr(eq + 1), where);
                if (key == "ref") source.ref = value;
                else if (key == "rev") source.rev = value;
                else if (key == "shallow") source.shallow = parseBoolParam(where + " shallow", value);
                else if (key == "submodules") source.submodules = parseBoolParam(where + " submodules", value);
                else fail(where, "unknown parameter '" + key + "' (expected ref, rev, shallow, submodules)");
            }
            if (end == std::string::npos) break;
            start = end + 1;
        }
    }
    auto hash = url.find('#');
    if (hash != std::string::npos) fail(where, "a fragment (#...) is not allowed");

    auto rest = url.substr(colon + 3);
    if (scheme == "file") {
        if (rest.empty() || rest[0] != '/') fail(where, "a file URL needs an absolute path (git+file:///path)");
    } else if (rest.empty() || rest[0] == '-' || rest[0] == '/') {
        fail(where, "missing or invalid host");
    }
    for (unsigned char c : url)
        if (c < 0x20 || c == 0x7f) fail(where, "control characters are not allowed");
    if (!source.ref.empty() && !isSafeRef(source.ref)) fail(where, "'" + source.ref + "' is not a valid git ref name");
    if (!source.rev.empty() && !isCommitHash(source.rev))
        fail(where, "rev '" + source.rev + "' is not a full commit hash");
    source.url = url;
    return source;
}

Jobset parseJobset(const json & document, const std::string & baseDir)
{
    if (!document.is_object()) throw JobsetError("jobset: must be a JSON object");
    onlyFields(document, "jobset", {"inputs", "expression", "options"});
    for (auto & [key, value] : document.items()) refuseNulBytes(value, key);
    Jobset jobset;

    auto & inputs = requireField(document, "jobset", "inputs");
    if (!inputs.is_object() || inputs.empty()) fail("inputs", "must be an object with at least one input");
    for (auto & [name, spec] : inputs.items()) {
        if (!isInputName(name))
            fail("inputs." + name, "an input name must be a Nix identifier (letters, digits, _, ', -)");
        jobset.inputs[name] = parseInput(spec, "inputs." + name, baseDir);
    }

    auto & expr = requireField(document, "jobset", "expression");
    if (!expr.is_object()) fail("expression", "must be an object {\"input\": NAME, \"path\": FILE}");
    onlyFields(expr, "expression", {"input", "path"});
    jobset.expression.input = requireString(expr, "expression", "input");
    jobset.expression.path = requireString(expr, "expression", "path");
    auto found = jobset.inputs.find(jobset.expression.input);
    if (found == jobset.inputs.end()) fail("expression.input", "no input named '" + jobset.expression.input + "'");
    if (found->second.type != InputType::Git && found->second.type != InputType::Path)
        fail("expression.input", "the expression must be in a git or path input");
    std::filesystem::path rel(jobset.expression.path);
    if (jobset.expression.path.empty() || rel.is_absolute())
        fail("expression.path", "must be a relative path inside the input");
    for (auto & part : rel)
        if (part == "..") fail("expression.path", "must not leave the input ('..')");

    if (document.contains("options")) {
        auto & o = document.at("options");
        if (!o.is_object()) fail("options", "must be an object");
        onlyFields(o, "options", {"workers", "maxMemorySize", "meta", "constituents", "forceRecurse",
                                  "checkCacheStatus", "showTrace", "evaluator", "push", "fleet"});
        auto & opts = jobset.options;
        opts.workers = optionalCount(o, "options", "workers", opts.workers);
        opts.maxMemoryMiB = optionalCount(o, "options", "maxMemorySize", opts.maxMemoryMiB);
        if (opts.maxMemoryMiB > maxMemoryMiBLimit)
            fail("options.maxMemorySize", "must be at most " + std::to_string(maxMemoryMiBLimit) + " (MiB, 1 TiB)");
        opts.meta = optionalBool(o, "options", "meta", opts.meta);
        opts.constituents = optionalBool(o, "options", "constituents", opts.constituents);
        opts.forceRecurse = optionalBool(o, "options", "forceRecurse", opts.forceRecurse);
        opts.checkCacheStatus = optionalBool(o, "options", "checkCacheStatus", opts.checkCacheStatus);
        opts.showTrace = optionalBool(o, "options", "showTrace", opts.showTrace);
        opts.push = optionalBool(o, "options", "push", opts.push);
        if (o.contains("fleet")) opts.fleet = optionalBool(o, "options", "fleet", false);
        if (o.contains("evaluator")) {
            opts.evaluator = requireString(o, "options", "evaluator");
            static const std::set<std::string> known{"evolive-eval-jobs", "nix-eval-jobs", "lix-eval-jobs"};
            if (!known.count(opts.evaluator))
                fail("options.evaluator", "must be evolive-eval-jobs, nix-eval-jobs or lix-eval-jobs");
        }
    }
    return jobset;
}

} // namespace evolive
