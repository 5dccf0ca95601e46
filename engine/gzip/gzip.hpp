// engine/gzip umbrella: chunked gzip members with a length subfield (head.hpp), their
// compressor/decompressor, a splitter for receivers, and a serial inflater for foreign gzip.
#pragma once

#include "engine/gzip/error.hpp"
#include "engine/gzip/head.hpp"
#include "engine/gzip/member_compressor.hpp"
#include "engine/gzip/member_decompressor.hpp"
#include "engine/gzip/member_splitter.hpp"
#include "engine/gzip/stream_inflater.hpp"
