int tessera_crc32c_placeholder(void);
