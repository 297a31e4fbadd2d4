// The PKCS#11 API (p11-kit's pkcs11.h, standard CK_ names). Include this, never the header
// directly, so that every module sees the same definitions.
#pragma once

#include <p11-kit/pkcs11.h>
