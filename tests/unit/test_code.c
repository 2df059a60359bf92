/* test_code.c — code context extraction (xp__code_extract, internal API):
 * the exact definition text of a C function found by matching braces while
 * skipping strings, character literals, comments and preprocessor lines. */
#include <criterion/criterion.h>

#include "capture/code.h"
#include "value.h"

#include <string.h>

TestSuite(code, .timeout = 30);

/* Extracts symbol from src and asserts the exact text (expected NULL: not
 * found). */
static void check_extract(const char *src, const char *symbol,
                          const char *expected)
{
    char *got = xp__code_extract(src, strlen(src), symbol);
    if (!expected) {
        cr_assert_null(got, "'%s' should not be found, got:\n[%s]\nin:\n%s",
                       symbol, got ? got : "", src);
        return;
    }
    cr_assert_not_null(got, "'%s' not found in:\n%s", symbol, src);
    cr_assert_str_eq(got, expected, "'%s' extracted as:\n[%s]\nexpected:\n[%s]",
                     symbol, got, expected);
    bson_free(got);
}

Test(code, plain_function)
{
    const char *def = "int add(int a, int b)\n{\n    return a + b;\n}";
    char src[256];
    snprintf(src, sizeof src, "#include <stdio.h>\n\n%s\n\nint x;\n", def);
    check_extract(src, "add", def);
}

Test(code, return_type_on_its_own_line)
{
    const char *def = "static double\nscale(double v)\n{\n    return v * 2;\n}";
    char src[256];
    snprintf(src, sizeof src, "int y = 3;\n%s\n", def);
    check_extract(src, "scale", def);
}

Test(code, nested_braces)
{
    const char *def = "int f(int n)\n"
                      "{\n"
                      "    int s = 0;\n"
                      "    for (int i = 0; i < n; i++) {\n"
                      "        if (i % 2) {\n"
                      "            struct { int a; } t = {i};\n"
                      "            s += t.a;\n"
                      "        } else { s--; }\n"
                      "    }\n"
                      "    return s;\n"
                      "}";
    char src[512];
    snprintf(src, sizeof src, "%s\n\nint g(void) { return 0; }\n", def);
    check_extract(src, "f", def);
}

Test(code, braces_in_strings_chars_and_comments)
{
    const char *def = "int f(void)\n"
                      "{\n"
                      "    const char *s = \"}\";\n"
                      "    const char *q = \"\\\"}{\";\n"
                      "    char c = '{';\n"
                      "    char e = '\\'';\n"
                      "    char d = '\"';\n"
                      "    /* } */\n"
                      "    // }\n"
                      "    return s[0] + q[0] + c + e + d;\n"
                      "}";
    char src[512];
    snprintf(src, sizeof src, "%s\nint after(void) { return 1; }\n", def);
    check_extract(src, "f", def);
}

Test(code, braces_in_comments_between_functions)
{
    /* A stray brace in a comment or string at file scope must not shift
     * the depth of what follows. */
    const char *src = "/* { */\n"
                      "// {\n"
                      "const char *open = \"{\";\n"
                      "int f(void) { return 2; }\n";
    check_extract(src, "f", "int f(void) { return 2; }");
}

Test(code, line_comment_with_continuation)
{
    const char *def = "int f(void)\n{\n    // a } \\\n    still a comment }\n"
                      "    return 1;\n}";
    check_extract(def, "f", def);
}

Test(code, kr_style_definition)
{
    const char *def = "int f(a, b) int a; int b; { return a + b; }";
    char src[256];
    snprintf(src, sizeof src, "int z;\n%s\nint w;\n", def);
    check_extract(src, "f", def);
    const char *multi = "long\nf(a, p)\n    int a;\n    char *p;\n"
                        "{\n    return a + *p;\n}";
    check_extract(multi, "f", multi);
}

Test(code, one_line_function)
{
    check_extract("int a; static int one(void) { return 1; } int b;", "one",
                  "static int one(void) { return 1; }");
}

Test(code, prototype_before_definition)
{
    const char *def = "int f(int x)\n{\n    return x * 3;\n}";
    char src[256];
    snprintf(src, sizeof src,
             "int f(int x);\nstatic int g(void) { return f(1); }\n\n%s\n", def);
    check_extract(src, "f", def);
    /* A prototype with attributes is still a prototype. */
    snprintf(src, sizeof src, "int f(int x) __attribute__((const));\n%s\n",
             def);
    check_extract(src, "f", def);
    /* Only a prototype: nothing to extract. */
    check_extract("int f(int x);\nint g(int y);\n", "f", NULL);
}

Test(code, name_prefix_of_another)
{
    const char *step2 = "int step2(int x) { return x + 2; }";
    const char *step = "int step(int x) { return x + 1; }";
    char src[256];
    snprintf(src, sizeof src, "%s\n%s\n", step2, step);
    check_extract(src, "step", step);
    check_extract(src, "step2", step2);
    snprintf(src, sizeof src, "%s\n%s\n", step, step2);
    check_extract(src, "step", step);
    check_extract(src, "step2", step2);
    /* Neither a longer name nor one ending with the symbol matches. */
    check_extract("int my_step(void) { return 0; }\n"
                  "int step_b(void) { return 0; }\n",
                  "step", NULL);
}

Test(code, call_inside_another_function_does_not_match)
{
    check_extract("int g(void)\n{\n    return f(1) + f (2);\n}\n", "f", NULL);
    const char *def = "int f(int v) { return v; }";
    char src[256];
    snprintf(src, sizeof src, "int g(void)\n{\n    return f(1);\n}\n%s\n", def);
    check_extract(src, "f", def);
    /* A call in a file-scope initializer is no definition either. */
    check_extract("int v = f(3);\n", "f", NULL);
}

Test(code, attribute_between_parameters_and_body)
{
    const char *def = "static int f(int x) __attribute__((unused))\n"
                      "{\n    return x;\n}";
    char src[256];
    snprintf(src, sizeof src, "int a;\n%s\n", def);
    check_extract(src, "f", def);
    const char *before = "__attribute__((unused)) static int h(void) "
                         "{ return 0; }";
    check_extract(before, "h", before);
}

Test(code, preprocessor_lines_with_braces)
{
    const char *def = "int f(void)\n"
                      "{\n"
                      "#define CLOSE }\n"
                      "#if 0 /* { */\n"
                      "#endif\n"
                      "    return 1;\n"
                      "}";
    char src[512];
    snprintf(src, sizeof src,
             "#include <stdio.h>\n#define OPEN {\n#define BODY(x) { x }\n%s\n",
             def);
    check_extract(src, "f", def);
    /* A definition inside a macro is not code. */
    check_extract("#define f(x) { return x; }\nint g(void) { return 0; }\n",
                  "f", NULL);
}

Test(code, missing_symbol)
{
    check_extract("int g(void) { return 0; }\n", "f", NULL);
    check_extract("", "f", NULL);
    /* The name in a string or comment is not a definition. */
    check_extract(
        "const char *s = \"int f(void) { }\";\n/* int f(void) {} */\n", "f",
        NULL);
}

Test(code, unterminated_body)
{
    check_extract("int f(void)\n{\n    return 1;\n", "f", NULL);
    check_extract("int f(void)\n{\n    const char *s = \"}\";\n", "f", NULL);
    check_extract("int f(void)\n{\n    if (1) { return 1; }\n", "f", NULL);
}

Test(code, crlf_source)
{
    check_extract("int a;\r\nint f(void)\r\n{\r\n    return 1;\r\n}\r\n", "f",
                  "int f(void)\r\n{\r\n    return 1;\r\n}");
}

Test(code, function_returning_a_function_pointer)
{
    const char *def = "static int (*pick(int k))(double)\n{\n"
                      "    return k ? lo : hi;\n}";
    char src[512];
    snprintf(src, sizeof src,
             "static int lo(double v) { return v < 0; }\n"
             "static int hi(double v) { return v > 0; }\n"
             "static int (*pick(int k))(double);\n\n%s\n",
             def);
    check_extract(src, "pick", def);
    /* A prototype alone is not a definition. */
    check_extract("int (*pick(int k))(double);\n", "pick", NULL);
}

Test(code, preprocessor_lines_between_parameters_and_body)
{
    const char *def = "int f(int a)\n#if defined(X)\n#endif\n{\n"
                      "    return a;\n}";
    char src[256];
    snprintf(src, sizeof src, "int g;\n%s\nint h;\n", def);
    check_extract(src, "f", def);
}

Test(code, comment_block_directly_above_belongs_to_the_function)
{
    const char *def = "/* Adds one. */\nint f(int a)\n{\n    return a + 1;\n}";
    char src[256];
    snprintf(src, sizeof src, "int g;\n%s\n", def);
    check_extract(src, "f", def);
    /* Several comments, with no blank line between them or below them. */
    const char *lines = "// first\n// second\n/* third */\nint f(void) { "
                        "return 0; }";
    snprintf(src, sizeof src, "#include <stdio.h>\n\n%s\n", lines);
    check_extract(src, "f", lines);
    check_extract(lines, "f", lines);
}

Test(code, comment_separated_by_a_blank_line_is_not_part_of_the_function)
{
    /* A section banner: editing it must not change the step's code. */
    const char *def = "int f(void)\n{\n    return 1;\n}";
    char src[512];
    snprintf(src, sizeof src, "int g;\n/* ---------------- steps */\n\n%s\n",
             def);
    check_extract(src, "f", def);
    /* At the start of the file, and with blanks on the empty line. */
    snprintf(src, sizeof src, "/* file banner */\n  \t\n%s\n", def);
    check_extract(src, "f", def);
    snprintf(src, sizeof src, "// banner\r\n\r\n%s\r\n", def);
    check_extract(src, "f", def);
    /* Only the block below the blank line belongs to the function. */
    const char *doc = "/* Returns one. */\nint f(void)\n{\n    return 1;\n}";
    snprintf(src, sizeof src,
             "#include <stdio.h>\n/* banner */\n\n/* more banner */\n\n%s\n",
             doc);
    check_extract(src, "f", doc);
}

Test(code, comment_ending_the_previous_line_is_not_part_of_the_function)
{
    const char *def = "int f(void) { return 1; }";
    char src[256];
    snprintf(src, sizeof src, "int counter; /* of g */\n%s\n", def);
    check_extract(src, "f", def);
    const char *doc = "/* one */\nint f(void) { return 1; }";
    snprintf(src, sizeof src, "int g(void) { return 0; } // g\n%s\n", doc);
    check_extract(src, "f", doc);
}

static int s_static_step(int x)
{
    return x + 1;
}

int xpt_exported_step(int x);
int xpt_exported_step(int x)
{
    return x + 2;
}

static int s_not_a_function;

Test(code, symbol_of_a_function_from_its_address)
{
    /* Static functions too: steps usually are. */
    char *sym = xp__code_symbol((const void *)(uintptr_t)s_static_step);
    cr_assert_not_null(sym, "no symbol for a static function");
    cr_assert_str_eq(sym, "s_static_step");
    bson_free(sym);
    sym = xp__code_symbol((const void *)(uintptr_t)xpt_exported_step);
    cr_assert_not_null(sym, "no symbol for an exported function");
    cr_assert_str_eq(sym, "xpt_exported_step");
    bson_free(sym);
    cr_assert_null(xp__code_symbol(&s_not_a_function), "a variable");
    cr_assert_null(xp__code_symbol(NULL), "NULL");
    cr_assert_eq(s_static_step(1) + xpt_exported_step(1), 5);
}
