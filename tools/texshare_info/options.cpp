#include "options.hpp"

namespace texshare::info {

Result<Options> parse_options(std::span<const char* const> arguments) {
    Options options;
    for (std::string_view argument : arguments) {
        if (argument == "--json") {
            options.json = true;
        } else if (argument == "--check-zero-copy") {
            options.check_zero_copy = true;
        } else if (argument == "--help" || argument == "-h") {
            options.help = true;
        } else {
            return make_error(Errc::invalid_argument, "unknown argument \"{}\"", argument);
        }
    }
    return options;
}

}  // namespace texshare::info
