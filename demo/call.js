// The demo's video call: `?mode=call` (two pages) and `?mode=room-call` (a room: one tile per
// member). The camera and microphone go to the other page(s) with addTrack before the peer
// starts, so the first offer carries them. The buttons change what is sent without
// renegotiating: mute and camera off are `mute(track)` (the local preview keeps playing), share
// screen is `replaceTrack(camera, screen)`, and back. Remote tiles come and go with the `track`,
// `track-removed` and `track-ended` events (and `peer-leave` in a room).
// A plain script run after demo.js, whose globals it uses: peer, inCall, note, start, $.
;(() => {
  if (!inCall) return

  $('call').hidden = false
  document.querySelector('h1 small').textContent = 'video call over WebRTC'
  document.title = 'politely demo: video call over WebRTC'

  /** What this page sends and shows; window.demoCall, for the browser tests and the console. */
  const call = {
    /** The camera and microphone stream; null when refused or absent (the page then only receives). */
    stream: null,
    camera: null,
    microphone: null,
    /** What is sent in the camera's place (a shared screen), or null. */
    screen: null,
    /** Each remote's tile by its id: `{ figure, video, tracks }`. */
    tiles: new Map(),
    /** Resolves once the media is added and the peer started. */
    ready: undefined,
    present,
    stopPresenting,
  }
  window.demoCall = call

  /** The video track sent now: the shared screen, else the camera. */
  const sentVideo = () => call.screen ?? call.camera

  // --- tiles -------------------------------------------------------------

  function makeTile(label) {
    const figure = document.createElement('figure')
    figure.className = 'tile'
    const video = document.createElement('video')
    video.autoplay = true
    video.playsInline = true
    const caption = document.createElement('figcaption')
    caption.textContent = label
    figure.append(video, caption)
    $('videos').append(figure)
    return { figure, video, tracks: [] }
  }

  function play(video) {
    video.play().catch((error) => {
      // Sound may not start before the user touched the page: play muted until a click.
      if (error.name !== 'NotAllowedError' || video.muted) return
      video.muted = true
      video.play().catch(() => {})
      $('call-note').textContent = 'Click anywhere to hear the others'
      document.addEventListener(
        'click',
        () => {
          for (const tile of call.tiles.values()) tile.video.muted = false
          $('call-note').textContent = ''
        },
        { once: true },
      )
    })
  }

  /** Shows a tile's tracks: a new stream each time, so every browser picks up the change. */
  function attach(tile) {
    tile.video.srcObject = new MediaStream(tile.tracks)
    tile.figure.classList.toggle('empty', !tile.tracks.some((track) => track.kind === 'video'))
    play(tile.video)
  }

  /** The remote tile showing `track`, if any. */
  function tileOf(track) {
    for (const [id, tile] of call.tiles) if (tile.tracks.includes(track)) return [id, tile]
    return []
  }

  function removeTile(id) {
    call.tiles.get(id)?.figure.remove()
    call.tiles.delete(id)
  }

  const local = makeTile(`${peer.id} (you)`)
  local.figure.classList.add('self')
  // Never hear yourself.
  local.video.muted = true
  const preview = () => {
    local.tracks = sentVideo() ? [sentVideo()] : []
    attach(local)
  }

  // A room's events name the member; a peer's remote is the one it is paired with.
  peer.on('track', ({ track, from }) => {
    const id = from ?? peer.remoteId ?? 'remote'
    if (!call.tiles.has(id)) call.tiles.set(id, makeTile(id))
    const tile = call.tiles.get(id)
    if (!tile.tracks.includes(track)) tile.tracks.push(track)
    attach(tile)
  })
  // The remote stopped sending it: the tile stays (it may send again), without that track.
  peer.on('track-removed', ({ track }) => {
    const [, tile] = tileOf(track)
    if (!tile) return
    tile.tracks = tile.tracks.filter((other) => other !== track)
    attach(tile)
  })
  // Gone for good (the link was rebuilt or closed): so is the tile once it has no track left.
  peer.on('track-ended', ({ track }) => {
    const [id, tile] = tileOf(track)
    if (!tile) return
    tile.tracks = tile.tracks.filter((other) => other !== track)
    if (tile.tracks.length) attach(tile)
    else removeTile(id)
  })
  peer.on('peer-leave', ({ id }) => removeTile(id))

  // --- what is sent ----------------------------------------------------------

  function pressed(button, on, label) {
    button.setAttribute('aria-pressed', String(on))
    button.textContent = label
  }

  let micMuted = false
  let cameraOff = false

  $('mic').addEventListener('click', async () => {
    micMuted = !micMuted
    pressed($('mic'), micMuted, micMuted ? 'Unmute' : 'Mute')
    note(micMuted ? 'microphone muted' : 'microphone on')
    await peer.mute(call.microphone, micMuted)
  })

  // Whatever video is sent (the camera or a shared screen) stops; the preview keeps playing.
  $('camera').addEventListener('click', async () => {
    cameraOff = !cameraOff
    pressed($('camera'), cameraOff, cameraOff ? 'Camera on' : 'Camera off')
    local.figure.classList.toggle('off', cameraOff)
    note(cameraOff ? 'camera off' : 'camera on')
    await peer.mute(sentVideo(), cameraOff)
  })

  $('share').addEventListener('click', async () => {
    if (call.screen) return stopPresenting()
    let screen
    try {
      screen = await navigator.mediaDevices.getDisplayMedia({ video: true, audio: false })
    } catch (error) {
      // The user cancelled the picker, or this browser cannot share a screen here.
      return note(`share screen: ${error.name}`, 'warn')
    }
    await present(screen.getVideoTracks()[0])
  })

  /** Sends `track` in the camera's place, without renegotiating; back to the camera when it ends. */
  async function present(track) {
    const previous = call.screen
    const switched = peer.replaceTrack(sentVideo(), track)
    call.screen = track
    // The browser's own "Stop sharing" ends the track: back to the camera, as a second click does.
    track.addEventListener('ended', () => call.screen === track && stopPresenting(), { once: true })
    pressed($('share'), true, 'Stop sharing')
    note('sharing the screen')
    preview()
    await switched
    previous?.stop()
  }

  /** Sends the camera again in the shared screen's place, without renegotiating. */
  async function stopPresenting() {
    const screen = call.screen
    if (!screen) return
    const switched = peer.replaceTrack(screen, call.camera)
    call.screen = null
    pressed($('share'), false, 'Share screen')
    note('camera back')
    preview()
    await switched
    screen.stop()
  }

  async function open() {
    try {
      call.stream = await navigator.mediaDevices.getUserMedia({ audio: true, video: { width: 640, height: 360 } })
    } catch (error) {
      // Refused, or no device: this page still receives the others.
      note(`camera and microphone: ${error.name}; receiving only`, 'warn')
    }
    if (call.stream) {
      call.camera = call.stream.getVideoTracks()[0] ?? null
      call.microphone = call.stream.getAudioTracks()[0] ?? null
      for (const track of call.stream.getTracks()) peer.addTrack(track, call.stream)
      $('mic').disabled = !call.microphone
      $('camera').disabled = !call.camera
      $('share').disabled = !call.camera || !navigator.mediaDevices.getDisplayMedia
      preview()
    }
    await start()
  }
  call.ready = open()
})()
