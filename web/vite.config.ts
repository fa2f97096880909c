// Vite builds the web app into MLAAS_WEB_OUT (CMake: build/<preset>/web), which `mlaas serve`
// serves at /. No CDN: every script, style and font is in the build.
import { defineConfig } from "vite";

export default defineConfig({
  base: "/",
  build: {
    outDir: process.env.MLAAS_WEB_OUT || "dist",
    emptyOutDir: true,
    assetsDir: "assets",
    sourcemap: false,
    chunkSizeWarningLimit: 1024,
  },
});
