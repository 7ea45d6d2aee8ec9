// @vitest-environment happy-dom
import { defineKitSuite } from "./kit-cases.ts";

defineKitSuite("happy-dom");
