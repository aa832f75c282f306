# The iroute command-line tool (runtime/cmd/iroute.c -> $(BUILD)/bin/iroute)
# and libyaml, which reads stack.yml (runtime/src/stack.c, in libiroute.a,
# so every binary and the test runner link it).
YAML_CFLAGS := $(shell pkg-config --cflags yaml-0.1 2>/dev/null)
YAML_LIBS   := $(shell pkg-config --libs yaml-0.1 2>/dev/null || echo -lyaml)
CFLAGS      += $(YAML_CFLAGS)
EXT_LIBS    += $(YAML_LIBS)

CLI_BIN := $(BUILD)/bin/iroute

all: $(CLI_BIN)
test-unit valgrind: $(CLI_BIN)

# Where `iroute local up` finds template/ and the runtime headers when it
# runs from a build tree rather than an install (see runtime/cmd/iroute.c).
$(BUILD)/obj/runtime/cmd/iroute.o: CFLAGS += -DIROUTE_SRC_DIR='"$(CURDIR)"'

$(CLI_BIN): $(BUILD)/obj/runtime/cmd/iroute.o $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $< $(LIB) $(EXT_LIBS) $(LDLIBS)

# runtime/cmd/iroute.c also matches the iroute-<name> pattern of CMD_BINS;
# that name is only a link to the tool.
$(BUILD)/bin/iroute-iroute: $(CLI_BIN)
	ln -sf iroute $@


-include $(BUILD)/obj/runtime/cmd/iroute.d
