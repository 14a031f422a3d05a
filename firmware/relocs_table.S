/* relocs_table.S - the KASLR relocation table made by relocs.c (see head64.S). */
	.section .kaslr_relocs, "a"
	.incbin RELOCS_FILE
