# Optional NCCL backend (DESIGN §4), found or skipped:
#  - NCCL + CUDA toolkit + a CUDA LibTorch: src/dist/nccl/* is compiled into pc_dist
#    (PC_HAVE_NCCL), make_comm("nccl"/"auto") uses it.
#  - NCCL + CUDA toolkit, CPU LibTorch (this project's CPU machines): pc_nccl, a static library of
#    the NCCL code without the torch-CUDA glue, and nccl_link_check, which links it against
#    libnccl/libcudart. pc_dist stays CPU-only.
#  - no NCCL: nothing; make_comm("nccl") says the build has no NCCL.
# NCCL_HOME or CUDAToolkit_ROOT point at other installations.
option(PYRAMIDCLIP_WITH_NCCL "Build the NCCL backend when nccl.h and libnccl are found" ON)

set(PC_NCCL_FOUND OFF)
if(PYRAMIDCLIP_WITH_NCCL)
  find_package(CUDAToolkit QUIET)
  find_path(NCCL_INCLUDE_DIR nccl.h
    HINTS $ENV{NCCL_HOME}/include ${CUDAToolkit_INCLUDE_DIRS} /usr/local/cuda/include)
  find_library(NCCL_LIBRARY nccl
    HINTS $ENV{NCCL_HOME}/lib $ENV{NCCL_HOME}/lib64 ${CUDAToolkit_LIBRARY_DIR} /usr/local/cuda/lib64)
  if(CUDAToolkit_FOUND AND NCCL_INCLUDE_DIR AND NCCL_LIBRARY)
    set(PC_NCCL_FOUND ON)
  endif()
endif()

if(TARGET torch_cuda OR TARGET c10_cuda OR TORCH_CUDA_LIBRARIES)
  set(PC_TORCH_CUDA ON)
else()
  set(PC_TORCH_CUDA OFF)
endif()

set(PC_NCCL_SOURCES
  ${PROJECT_SOURCE_DIR}/src/dist/nccl/nccl_ops.cpp
  ${PROJECT_SOURCE_DIR}/src/dist/nccl/nccl_comm_impl.cpp)

if(NOT PYRAMIDCLIP_WITH_NCCL)
  message(STATUS "NCCL backend: disabled (PYRAMIDCLIP_WITH_NCCL=OFF); comm backend 'mpi' only")
elseif(NOT PC_NCCL_FOUND)
  message(STATUS "NCCL backend: skipped (nccl.h/libnccl or the CUDA toolkit not found; set NCCL_HOME or "
                 "CUDAToolkit_ROOT); comm backend 'mpi' only")
elseif(PC_TORCH_CUDA)
  message(STATUS "NCCL backend: ON (${NCCL_LIBRARY}, CUDA LibTorch): compiled into pc_dist")
  target_sources(pc_dist PRIVATE ${PC_NCCL_SOURCES} ${PROJECT_SOURCE_DIR}/src/dist/nccl/cuda_glue.cpp)
  target_include_directories(pc_dist PRIVATE ${NCCL_INCLUDE_DIR})
  target_link_libraries(pc_dist PUBLIC ${NCCL_LIBRARY} CUDA::cudart)
  target_compile_definitions(pc_dist PRIVATE PC_HAVE_NCCL)
else()
  message(STATUS "NCCL backend: compile/link check only (${NCCL_LIBRARY} found, but LibTorch has no CUDA): "
                 "targets pc_nccl and nccl_link_check; comm backend 'mpi' only")
  add_library(pc_nccl STATIC ${PC_NCCL_SOURCES})
  target_include_directories(pc_nccl PRIVATE ${NCCL_INCLUDE_DIR})
  target_link_libraries(pc_nccl PUBLIC pc_dist torch ${NCCL_LIBRARY} CUDA::cudart)
  target_compile_options(pc_nccl PRIVATE ${PC_WARNINGS})
  add_executable(nccl_link_check ${PROJECT_SOURCE_DIR}/src/dist/nccl/link_check.cpp)
  target_link_libraries(nccl_link_check PRIVATE pc_nccl)
  target_compile_options(nccl_link_check PRIVATE ${PC_WARNINGS})
endif()
