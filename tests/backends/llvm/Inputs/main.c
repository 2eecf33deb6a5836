/* main.c: the main() of an executable whose model object came from
 * `kiln build --backend=llvm --emit=obj` (the object defines cnn_model,
 * declared by the header written next to it). */
#include "cnn.h"

int
main(int argc, char **argv)
{
	return kiln_main(argc, argv, &cnn_model);
}
