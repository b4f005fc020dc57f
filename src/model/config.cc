// placeholder: replaced by the module implementation (config.cc)
