# Front ends speak only to the engine: fails when a file under plugin/cni, plugin/docker or
# plugin/cli includes netlink/, ovs/ or the core's internals (modes/, dhcp.h). Run by ctest
# (label unit) as `cmake -DROOT=<source dir> -P tests/layering.cmake`.
set(bad "")
foreach(dir plugin/cni plugin/docker plugin/cli)
  file(GLOB_RECURSE files "${ROOT}/${dir}/*.cc" "${ROOT}/${dir}/*.h")
  foreach(f ${files})
    file(STRINGS "${f}" lines REGEX "^[ \t]*#[ \t]*include[ \t]*[\"<](netlink/|ovs/|plugin/core/modes/|plugin/core/dhcp\\.h)")
    foreach(line ${lines})
      file(RELATIVE_PATH rel "${ROOT}" "${f}")
      string(APPEND bad "  ${rel}: ${line}\n")
    endforeach()
  endforeach()
endforeach()
if(bad)
  message(FATAL_ERROR "front ends must reach the kernel through plugin/core only:\n${bad}")
endif()
message(STATUS "layering: no front end includes netlink/, ovs/ or the core's internals")
