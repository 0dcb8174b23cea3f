// Real Firefox for the cross-browser suites: Debian's firefox-esr driven by
// puppeteer-core over WebDriver BiDi (never a downloaded browser).
import { existsSync } from 'node:fs'
import puppeteer, { type Browser } from 'puppeteer-core'
import { describeRequiring } from '../support/requires'

const INSTALL = 'sudo apt-get install firefox-esr'

/** The Firefox binary: `FIREFOX_PATH` if set, else Debian's ESR. Undefined when none exists. */
export const firefoxPath: string | undefined = process.env.FIREFOX_PATH
  ? process.env.FIREFOX_PATH
  : ['/usr/bin/firefox-esr'].find((path) => existsSync(path))

/** Whether {@link firefoxPath} points at a file that exists. */
export const hasFirefox: boolean = firefoxPath !== undefined && existsSync(firefoxPath)

/**
 * Preferences on top of puppeteer's defaults (which already turn off updates,
 * safe browsing, Normandy's API URL, health reports and the new-tab feeds):
 * WebRTC shows real host addresses, and nothing phones home.
 */
const PREFS: Record<string, string | number | boolean> = {
  // No DNS at all: every name resolves to loopback without a query. Tests use IP literals only, and
  // release builds ignore `services.settings.server`, so Remote Settings would look up
  // firefox.settings.services.mozilla.com however the rest is configured.
  'network.dns.forceResolve': '127.0.0.1',
  // Raw host candidates: an mDNS name (`<uuid>.local`) would need multicast, and Chromium could not resolve it here.
  'media.peerconnection.ice.obfuscate_host_addresses': false,
  // Fake devices and no permission prompt, for suites that send media.
  'media.navigator.streams.fake': true,
  'media.navigator.permission.disabled': true,
  // No downloads of the OpenH264 / Widevine plugins.
  'media.gmp-gmpopenh264.enabled': false,
  'media.gmp-gmpopenh264.autoupdate': false,
  'media.gmp-widevinecdm.enabled': false,
  // Telemetry, studies, experiments, crash and health reports.
  'toolkit.telemetry.enabled': false,
  'toolkit.telemetry.unified': false,
  'toolkit.telemetry.archive.enabled': false,
  'toolkit.telemetry.server': '',
  'datareporting.policy.dataSubmissionEnabled': false,
  'datareporting.healthreport.uploadEnabled': false,
  'app.normandy.enabled': false,
  'app.shield.optoutstudies.enabled': false,
  'messaging-system.rsexperimentloader.enabled': false,
  'browser.crashReports.unsubmittedCheck.enabled': false,
  'browser.ping-centre.telemetry': false,
  // Updates of the browser, its add-ons and its remote settings.
  'app.update.enabled': false,
  'app.update.auto': false,
  'extensions.update.enabled': false,
  'extensions.systemAddon.update.enabled': false,
  'extensions.blocklist.enabled': false,
  'browser.safebrowsing.update.enabled': false,
  // Background probes: captive portal, connectivity, DNS over HTTPS, push, region and geolocation lookups.
  'network.captive-portal-service.enabled': false,
  'network.connectivity-service.enabled': false,
  'network.trr.mode': 5,
  'dom.push.connection.enabled': false,
  'dom.push.serverURL': '',
  'browser.region.network.url': '',
  'browser.region.update.enabled': false,
  'geo.provider.network.url': '',
  'browser.search.geoip.url': '',
  // Speculative work: prefetching, DNS prefetch, predictor, new-tab top sites.
  'network.prefetch-next': false,
  'network.dns.disablePrefetch': true,
  'network.predictor.enabled': false,
  'browser.topsites.contile.enabled': false,
  'browser.newtabpage.activity-stream.feeds.topsites': false,
  'browser.newtabpage.activity-stream.showSponsored': false,
  'browser.newtabpage.activity-stream.showSponsoredTopSites': false,
  // OCSP would only run for https, but make sure.
  'security.OCSP.enabled': 0,
}

/** Launches headless Firefox ESR over WebDriver BiDi with nothing that talks to the internet. */
export async function launchFirefox(): Promise<Browser> {
  if (!hasFirefox) throw new Error(`Firefox not found (set FIREFOX_PATH or: ${INSTALL})`)
  return puppeteer.launch({
    browser: 'firefox',
    protocol: 'webDriverBiDi',
    executablePath: firefoxPath,
    headless: true,
    extraPrefsFirefox: PREFS,
  })
}

/** `describe` for suites that need Firefox: skipped loudly without it, a failure in CI. */
export function describeFirefox(name: string, fn: () => void): void {
  describeRequiring(
    {
      name: 'Firefox',
      present: hasFirefox,
      install: INSTALL,
      override: 'FIREFOX_PATH',
      looked: firefoxPath ?? '/usr/bin/firefox-esr',
    },
    name,
    fn,
  )
}
