/* test_mongo.c — placeholder until the mongo tests land. */
#include <criterion/criterion.h>

Test(mongo, pending)
{
    cr_skip_test("the mongo tests are not written yet");
}
