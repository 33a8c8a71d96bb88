# Writes a gzipped man page from a program's --help. Usage:
#   cmake -DBIN=<program> -DNAME=<name> -DSUMMARY=<one line> -DVERSION=<v> -DOUT=<file.1.gz> -P ManPage.cmake
cmake_minimum_required(VERSION 3.25)
execute_process(COMMAND "${BIN}" --help OUTPUT_VARIABLE help RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "${BIN} --help failed (${rc})")
endif()
# roff: backslashes escaped, lines that start with . or ' made literal.
string(REPLACE "\\" "\\e" help "${help}")
string(REGEX REPLACE "(^|\n)([.'])" "\\1\\\\&\\2" help "${help}")
string(TOUPPER "${NAME}" upper)
file(WRITE "${OUT}.tmp" ".TH ${upper} 1 \"\" \"certctrl ${VERSION}\" \"User Commands\"
.SH NAME
${NAME} \\- ${SUMMARY}
.SH DESCRIPTION
.nf
${help}.fi
.SH SEE ALSO
certctrl(1), certctrl-server(1); /usr/share/doc/certctrl/
")
execute_process(COMMAND gzip -9n -c "${OUT}.tmp" OUTPUT_FILE "${OUT}" RESULT_VARIABLE gz)
file(REMOVE "${OUT}.tmp")
if(NOT gz EQUAL 0)
  message(FATAL_ERROR "gzip failed")
endif()
