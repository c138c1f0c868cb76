#include "attr_path_list.hh"

#include "json_parse.hh"

#include <set>
#include <stdexcept>

namespace evolive {

std::vector<AttrPath> parseAttrPathList(std::string_view text)
{
    // Two levels (the list, a path); the bound only keeps hostile input cheap.
    auto list = parseJson(text, "the list of attribute paths", 2);
    if (!list.is_array())
        throw std::invalid_argument("expected a JSON array of attribute paths (arrays of strings), not " +
                                    std::string(list.type_name()));
    std::vector<AttrPath> paths;
    std::set<AttrPath> seen;
    for (size_t i = 0; i < list.size(); ++i) {
        auto & element = list[i];
        bool valid = element.is_array();
        for (auto & name : element) valid = valid && name.is_string();
        if (!valid)
            throw std::invalid_argument("element " + std::to_string(i) + " (" + element.dump() +
                                        ") is not an attribute path (an array of strings)");
        auto path = element.get<AttrPath>();
        if (seen.insert(path).second) paths.push_back(std::move(path));
    }
    return paths;
}

} // namespace evolive
