#include "json_line.hh"

namespace evolive {

std::string jsonLine(const nlohmann::json & message)
{
    return message.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

} // namespace evolive
