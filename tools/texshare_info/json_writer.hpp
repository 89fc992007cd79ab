// JsonWriter: the few JSON constructs texshare-info's --json needs, written with fmt.
//
// Use it instead of formatting JSON by hand: it places commas and indentation, and every
// string goes through json_string(), which escapes quotes, backslashes and control
// characters and replaces bytes that are not UTF-8 (a driver's name is whatever the driver
// says) with U+FFFD, so the output always parses. Misuse (a value where a key belongs, an
// unbalanced end) is a bug in the caller, caught by the tests that parse the output.
#pragma once

#include <concepts>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace texshare::info {

// `text` as a quoted JSON string.
std::string json_string(std::string_view text);

class JsonWriter {
public:
    JsonWriter& begin_object();
    JsonWriter& end_object();
    JsonWriter& begin_array();
    JsonWriter& end_array();
    JsonWriter& key(std::string_view name);  // in an object, before each value

    JsonWriter& value(std::string_view text);
    JsonWriter& value(const char* text) { return value(std::string_view(text)); }
    JsonWriter& value(bool flag);
    // A template so that integers of every width go here, not to value(bool).
    template <std::integral T>
    requires(!std::same_as<T, bool>) JsonWriter& value(T number) { return raw(std::to_string(number)); }
    JsonWriter& null();

    template <typename T>
    JsonWriter& field(std::string_view name, const T& content) {
        key(name);
        return value(content);
    }

    // The document, ending in a newline.
    std::string finish();

private:
    JsonWriter& raw(std::string_view token);
    JsonWriter& close(char bracket);
    void before_element();
    void newline();

    struct Level {
        bool object = false;
        bool empty = true;
    };
    std::string out_;
    std::vector<Level> levels_;
    bool after_key_ = false;
};

}  // namespace texshare::info
