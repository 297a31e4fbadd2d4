// The one translation unit of the whole build that compiles Asio's, Asio SSL's and Beast's
// implementation (target xks_boost_impl); every other file sees only declarations.
#include <boost/asio/impl/src.hpp>
#include <boost/asio/ssl/impl/src.hpp>
#include <boost/beast/src.hpp>
