/* userimage.S - the user programs (ulib.c, uprogs.c), linked at USER_TEXT
 * by user.ld and embedded here as a flat image; proc.c maps its pages
 * read-only and executable into every process. */
	.section .user.image, "a"
	.balign 4096
	.incbin USER_BIN
