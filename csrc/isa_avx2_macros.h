// Included by the AVX2 and AVX-512 kernel builds right after their `#pragma GCC target`: the
// pragma enables the instructions but does not define the feature macros that SLEEF's and ATen's
// headers test, so they are defined here. Never include this from baseline code.
#pragma once

#ifndef __AVX__
#define __AVX__ 1
#endif
#ifndef __AVX2__
#define __AVX2__ 1
#endif
#ifndef __FMA__
#define __FMA__ 1
#endif
#ifndef __F16C__
#define __F16C__ 1
#endif
