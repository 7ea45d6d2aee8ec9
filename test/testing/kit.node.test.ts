import { defineKitSuite } from "./kit-cases.ts";

defineKitSuite("node");
