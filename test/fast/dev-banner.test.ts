/** What `npm run dev` prints about the configuration it was given: nothing secret. */
import { expect, it } from "vitest";
import { mailServer } from "../../lib/local/demo";

it("names the SMTP server of SMTP_URL without the login the URL carries", () => {
  expect(mailServer("smtps://welcome:s3cret@smtp.example.test:465")).toBe("smtps://smtp.example.test:465");
  expect(mailServer("smtp://127.0.0.1:2525")).toBe("smtp://127.0.0.1:2525");
  expect(mailServer("smtp://user%40corp:p%40ss@mail.example.test")).not.toMatch(/p%40ss|user/);
});
