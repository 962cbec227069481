import * as functionsLogger from "firebase-functions/logger";
import type { Logger } from "../core/ports.js";

/** Structured logs (jsonPayload in Cloud Logging) through the firebase-functions logger. */
export const cloudLogger: Logger = {
  info: (message, fields) => functionsLogger.info(message, fields),
  warn: (message, fields) => functionsLogger.warn(message, fields),
  error: (message, fields) => functionsLogger.error(message, fields),
};
