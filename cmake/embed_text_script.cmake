# Script mode: writes OUT, a C++ file defining `std::string_view NAMESPACE::FUNCTION()` that returns the
# content of FILE (used for docs/openapi.json, which the server serves at GET /openapi.json).
file(READ "${FILE}" content)
set(body "// Generated from ${FILE} by cmake/embed_text_script.cmake. Do not edit.\n")
string(APPEND body "#include <string_view>\n\nnamespace ${NAMESPACE} {\n\n")
string(APPEND body "std::string_view ${FUNCTION}() {\n    static constexpr char const text[] = R\"certctrl_text(${content})certctrl_text\";\n")
string(APPEND body "    return {text, sizeof(text) - 1};\n}\n\n}  // namespace ${NAMESPACE}\n")
file(WRITE "${OUT}.tmp" "${body}")
file(COPY_FILE "${OUT}.tmp" "${OUT}" ONLY_IF_DIFFERENT)
