#include "diff_format.hh"

#include <cctype>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <sstream>

namespace evolive::web {

using json = nlohmann::json;

namespace {

// Control characters shown as \xNN, so that a name cannot drive a terminal.
std::string printable(const std::string & s)
{
    std::string out;
    for (unsigned char c : s) {
        if (c < 0x20 || c == 0x7f) {
            char buf[8];
            std::snprintf(buf, sizeof buf, "\\x%02x", c);
            out += buf;
        } else {
            out += (char) c;
        }
    }
    return out;
}

// Text that Markdown and HTML take literally: ASCII punctuation as numeric
// character references, control characters dropped.
std::string literal(const std::string & s)
{
    std::string out;
    for (unsigned char c : s) {
        if (c < 0x20 || c == 0x7f) continue;
        if (c < 0x80 && !std::isalnum(c) && c != ' ' && c != '-' && c != '.' && c != ',' && c != '/' && c != ':' && c != '+')
            out += "&#" + std::to_string(c) + ";";
        else
            out += (char) c;
    }
    return out;
}

std::string shortFingerprint(const EvaluationSide & side)
{
    return side.fingerprint.empty() ? "(no fingerprint)" : side.fingerprint.substr(0, 12);
}

// "src 3f2a9c1d4e5f, officialRelease false": each input's revision, content
// hash or value, from the result's metadata.
std::string inputsLine(const EvaluationSide & side)
{
    auto it = side.metadata.find("inputs");
    if (it == side.metadata.end()) return "";
    auto inputs = json::parse(it->second, nullptr, false);
    if (!inputs.is_object()) return "";
    std::string line;
    for (auto & [name, input] : inputs.items()) {
        std::string what;
        if (input.contains("rev") && input["rev"].is_string()) what = input["rev"].get<std::string>().substr(0, 12);
        else if (input.contains("contentHash") && input["contentHash"].is_string())
            what = input["contentHash"].get<std::string>().substr(0, 12);
        else if (input.contains("value")) what = input["value"].is_string() ? input["value"].get<std::string>() : input["value"].dump();
        if (what.size() > 40) what = what.substr(0, 37) + "...";
        line += (line.empty() ? "" : ", ") + name + " " + what;
    }
    return line;
}

struct Category
{
    const char * title;
    const std::vector<std::string> & names;
};

std::vector<Category> categories(const EvaluationDiff & d)
{
    return {{"added", d.added},       {"removed", d.removed},           {"changed", d.changed},
            {"rebuilds", d.rebuilds}, {"newly failing", d.newlyFailing}, {"fixed", d.fixed}};
}

std::vector<size_t> countsOf(const DiffCounts & c)
{
    return {c.added, c.removed, c.changed, c.rebuilds, c.newlyFailing, c.fixed};
}

} // namespace

std::string diffText(const EvaluationDiff & diff, size_t limit)
{
    std::ostringstream out;
    for (auto [name, side] : {std::pair{"old", &diff.old}, std::pair{"new", &diff.now}}) {
        out << name << "  " << shortFingerprint(*side) << "  " << side->jobs << " jobs, " << side->errors << " errors";
        if (auto it = side->metadata.find("finished"); it != side->metadata.end()) out << ", finished " << printable(it->second);
        if (auto inputs = inputsLine(*side); !inputs.empty()) out << "; " << printable(inputs);
        out << "\n";
    }
    size_t width = 6;
    for (auto & [system, counts] : diff.systems) width = std::max(width, printable(system).size());
    auto row = [&](const std::string & first, const std::vector<std::string> & cells) {
        char buf[32];
        out << first << std::string(width - std::min(width, first.size()), ' ');
        static const int widths[] = {7, 9, 9, 10, 15, 7};
        for (size_t i = 0; i < 6; ++i) {
            std::snprintf(buf, sizeof buf, "%*s", widths[i], cells[i].c_str());
            out << buf;
        }
        out << "  " << cells[6] << "\n";
    };
    out << "\n";
    row("system", {"added", "removed", "changed", "rebuilds", "newly failing", "fixed", "label"});
    auto numbers = [](const DiffCounts & c) {
        std::vector<std::string> cells;
        for (auto n : countsOf(c)) cells.push_back(std::to_string(n));
        cells.push_back(rebuildLabel(c.rebuilds));
        return cells;
    };
    for (auto & [system, counts] : diff.systems) row(printable(system), numbers(counts));
    row("all", numbers(diff.total));
    out << "\nlabels: ";
    auto labels = nixpkgsLabels(diff.kernels);
    for (size_t i = 0; i < labels.size(); ++i) out << (i ? ", " : "") << labels[i];
    out << "\n";
    for (auto & category : categories(diff)) {
        if (category.names.empty()) continue;
        out << "\n" << category.title << " (" << category.names.size() << "):\n";
        size_t shown = limit == 0 ? category.names.size() : std::min(limit, category.names.size());
        for (size_t i = 0; i < shown; ++i) out << "  " << printable(category.names[i]) << "\n";
        if (shown < category.names.size()) out << "  ... and " << category.names.size() - shown << " more (--limit)\n";
    }
    return out.str();
}

std::string diffMarkdown(const EvaluationDiff & diff, size_t limit)
{
    std::ostringstream out;
    out << "### Evaluation comparison\n\n"
        << "| | fingerprint | jobs | errors | inputs |\n|---|---|---:|---:|---|\n";
    for (auto [name, side] : {std::pair{"old", &diff.old}, std::pair{"new", &diff.now}})
        out << "| " << name << " | <code>" << literal(shortFingerprint(*side)) << "</code> | " << side->jobs << " | "
            << side->errors << " | " << literal(inputsLine(*side)) << " |\n";
    out << "\n| system | added | removed | changed | rebuilds | newly failing | fixed | label |\n"
        << "|---|---:|---:|---:|---:|---:|---:|---|\n";
    auto row = [&](const std::string & first, const DiffCounts & c) {
        out << "| " << first;
        for (auto n : countsOf(c)) out << " | " << n;
        out << " | " << rebuildLabel(c.rebuilds) << " |\n";
    };
    for (auto & [system, counts] : diff.systems) row("<code>" + literal(system) + "</code>", counts);
    row("**all**", diff.total);
    out << "\nLabels:";
    auto labels = nixpkgsLabels(diff.kernels);
    for (size_t i = 0; i < labels.size(); ++i) out << (i ? ", " : " ") << "<code>" << literal(labels[i]) << "</code>";
    out << "\n";
    for (auto & category : categories(diff)) {
        if (category.names.empty()) continue;
        std::string title = category.title;
        title[0] = (char) std::toupper(title[0]);
        out << "\n<details><summary>" << title << " (" << category.names.size() << ")</summary>\n\n";
        size_t shown = limit == 0 ? category.names.size() : std::min(limit, category.names.size());
        for (size_t i = 0; i < shown; ++i) out << "- <code>" << literal(category.names[i]) << "</code>\n";
        if (shown < category.names.size()) out << "- ... and " << category.names.size() - shown << " more\n";
        out << "\n</details>\n";
    }
    return out.str();
}

} // namespace evolive::web
