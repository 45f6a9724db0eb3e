// The reference model's two instantiations (ref/model/transformer.h holds the code, so that the GPU
// path can instantiate the same template on its backend).
#include "transformer.h"

namespace scalevec {

template class Transformer<float>;
template class Transformer<double>;

}  // namespace scalevec
