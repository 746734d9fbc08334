// Signs Zoom Video SDK tokens along the path of Zoom's own sample endpoint
// (zoom/videosdk-auth-endpoint-sample, src/index.js): the same coercion of
// the request body, the same payload object in the same key order, the
// same JSON.stringify and the same KJUR.jws.JWS.sign from jsrsasign. Only
// iat is fixed per case instead of Date.now(), so the output is stable.
//
// Regenerate with:  cd testdata/zoom && npm ci && npm run --silent vectors
// zoom_test.go mints every case with tokend and compares byte for byte.
import { KJUR } from 'jsrsasign'

// Fake credentials: never a real Video SDK app's.
const key = 'ZOOMKEYdeadbeefdeadbeef'
const secret = 'zoom-secret-deadbeefdeadbeefdeadbeefdeadbeef'

const cases = [
  { name: 'participant, defaults', iat: 1767225600, body: { sessionName: 'standup', role: 0, userIdentity: 'alice' } },
  { name: 'host with every sample field', iat: 1767225600, body: {
      sessionName: 'Board Room #1', role: 1, expirationSeconds: 172800, userIdentity: 'bob',
      sessionKey: 'k-123', geoRegions: 'US, DE', cloudRecordingOption: 1, cloudRecordingElection: 0 } },
  { name: 'strings coerced as the sample does', iat: 1767225600, body: {
      sessionName: 'coerce', role: '1', expirationSeconds: '1800', userIdentity: 'carol', cloudRecordingOption: '0' } },
  { name: 'geo regions as a list', iat: 1767225600, body: { sessionName: 'geo', role: 0, userIdentity: 'dave', geoRegions: ['JP', 'SG', 'AU'] } },
  { name: 'html characters are not escaped', iat: 1767225600, body: { sessionName: 'a<b>&c', role: 0, userIdentity: 'e&f<g>' } },
  { name: 'non-ASCII session and identity', iat: 1767225600, body: { sessionName: 'Réunion 会议', role: 0, userIdentity: 'zoë' } },
  { name: 'longest session name, identity and session key', iat: 1700000000, body: {
      sessionName: 's'.repeat(200), role: 0, userIdentity: 'i'.repeat(35), sessionKey: 'k'.repeat(36) } },
  { name: 'backslash in the session name', iat: 1700000000, body: { sessionName: 'a\\b', role: 0, userIdentity: 'frank' } },
  { name: 'no user identity', iat: 1700000000, body: { sessionName: 'anon', role: 1 } },
  { name: 'webrtc modes and telemetry id', iat: 1700000000, body: {
      sessionName: 'modes', role: 0, userIdentity: 'grace', videoWebrtcMode: 1, audioWebrtcMode: 0, telemetryTrackingId: 'trace-42' } }
]

// From the sample: numbers sent as strings are parsed.
const coerceRequestBody = (body) => ({
  ...body,
  ...['role', 'expirationSeconds', 'cloudRecordingOption', 'cloudRecordingElection', 'videoWebrtcMode', 'audioWebrtcMode'].reduce(
    (acc, cur) => ({ ...acc, [cur]: typeof body[cur] === 'string' ? parseInt(body[cur]) : body[cur] }),
    {}
  )
})

// From the sample's utils.js.
const isDefined = (str) => !!str
const replaceWhitespace = (str) => str.replace(/\s+/g, '')
const toStringArray = (value) =>
  Array.isArray(value)
    ? value.flatMap(replaceWhitespace).filter(isDefined)
    : value?.split(',').map(replaceWhitespace).filter(isDefined)
const joinGeoRegions = (geoRegions) => toStringArray(geoRegions)?.join(',')

const vectors = cases.map(({ name, iat, body }) => {
  const {
    role, sessionName, expirationSeconds, userIdentity, sessionKey, geoRegions,
    cloudRecordingOption, cloudRecordingElection, videoWebrtcMode, audioWebrtcMode, telemetryTrackingId
  } = coerceRequestBody(body)
  const exp = expirationSeconds ? iat + expirationSeconds : iat + 60 * 60 * 2
  const oHeader = { alg: 'HS256', typ: 'JWT' }
  const oPayload = {
    app_key: key,
    role_type: role,
    tpc: sessionName,
    version: 1,
    iat,
    exp,
    user_identity: userIdentity,
    session_key: sessionKey,
    geo_regions: joinGeoRegions(geoRegions),
    cloud_recording_option: cloudRecordingOption,
    cloud_recording_election: cloudRecordingElection,
    // Zoom's documented claims beyond the sample, in the same manner.
    video_webrtc_mode: videoWebrtcMode,
    audio_webrtc_mode: audioWebrtcMode,
    telemetry_tracking_id: telemetryTrackingId
  }
  const token = KJUR.jws.JWS.sign('HS256', JSON.stringify(oHeader), JSON.stringify(oPayload), secret)
  return { name, key, secret, iat, body, token }
})

console.log(JSON.stringify({ generator: 'jsrsasign KJUR.jws.JWS.sign, testdata/zoom/sign.mjs', vectors }, null, 2))
