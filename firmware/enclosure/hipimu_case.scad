// hipimu sensor case: Seeed XIAO nRF52840 Sense + a 250 mAh LiPo (502030,
// ~30 x 20 x 5 mm), two parts (base + lid), strap slots for a 40 mm strap.
// Parametric: every dimension below is a variable; check the "board
// features" block against YOUR board with calipers before printing.
//
// Stack, bottom to top: base floor, battery, double-sided foam tape, XIAO
// (components up, USB-C towards -X). Base and lid split at the USB-C
// connector's centre, so each half of the port opening is an open notch (no
// supports, no bridge), and the plug's overmold gets a recess so the plug
// seats fully. The strap runs along Y under the case: in over one outer bar,
// down through its slot, under the floor, up through the other slot.
//
// Outer size with the defaults (echoed when rendered): body 36.6 x 24.0 x
// 14.5 mm on a 47.2 x 36.2 mm strap flange (2.4 mm thick).
//
// Render:  openscad -D 'part="base"' -o base.stl hipimu_case.scad
//          openscad -D 'part="lid"'  -o lid.stl  hipimu_case.scad
//          part = "both" (print plate), "assembly" (check fit), "base", "lid".
//
// Print settings (FDM, 0.4 mm nozzle): PETG (tougher than PLA against strap
// pull, does not soften in a warm car; PLA is fine for a prototype);
// 0.2 mm layers; 4 perimeters (the 1.6 mm walls are solid); 4 top/bottom
// layers; 20 % gyroid infill; no supports. Base: flange down on the bed.
// Lid: top face down on the bed (as laid out by part="lid"/"both"). Brim only
// if the flange corners lift. Lid fit: a friction lip (fit = 0.15 mm); if it
// is loose, raise `fit` towards 0; if tight, 0.25. Optional: close with a
// strip of Kapton tape round the seam. LED: print the lid in natural
// (translucent) PETG and keep led_window = 0.4, or set led_window = 0 for an
// open hole and press in a piece of clear 1.75 mm filament as a light pipe.

part = "both";       // "both" | "base" | "lid" | "assembly"

/* [parts inside] */
xiao_l = 21.0;       // XIAO length, along X (USB-C end at -X)
xiao_w = 17.5;       // XIAO width, along Y
pcb_t = 1.0;         // PCB thickness
xiao_top_h = 3.4;    // tallest part above the PCB (the USB-C receptacle, ~3.2)
usb_protrusion = 0.6;// receptacle lip beyond the PCB edge
usb_w = 9.0;         // USB-C receptacle width (8.94)
usb_h = 3.3;         // USB-C receptacle height (3.26)
batt_l = 30.0;       // 502030: 30 x 20 x 5.0 mm (250 mAh)
batt_w = 20.0;
batt_t = 5.0;
batt_swell = 0.3;    // headroom for a LiPo
foam_t = 0.8;        // double-sided foam tape battery <-> XIAO
wire_room = 3.0;     // at the +X end: battery leads and its protection board
mag_layer = 0;       // 9D: ~5.5 for an Adafruit 4479 under the battery (25.4 x 17.8 mm)

/* [board features, from the XIAO's USB-C edge (x) and its centre line (y)] */
// Top side near the USB-C socket: the reset button on one side of it, the
// RGB LED and the charge LED on the other. Positions are approximate: measure
// your board (and set mirror_features = true if yours is the other way round).
reset_pos = [2.5, 6.5];
rgb_led_pos = [2.5, -6.5];
charge_led_pos = [5.5, -6.5];
mirror_features = false;
reset_hole_d = 2.2;  // for a paper clip / SIM pin; the button top is ~1.5 above the PCB
led_hole_d = 2.0;    // light pipe: 1.75 mm clear filament, press fit
led_window = 0.4;    // > 0: closed skin of this thickness over the LEDs (translucent print)
led_tube_gap = 0.8;  // light-pipe tube ends this far above the PCB (LEDs are ~0.6 tall)

/* [case] */
wall = 1.6;
floor_t = 1.6;
top_t = 2.0;         // leaves ~0.7 mm above the plug recess
clr = 0.4;           // around the parts
fit = 0.15;          // lid lip to base wall, per side
lip_t = 1.0;
lip_h = 1.6;
r_out = 2.5;         // outer corner radius
plug_w = 13.0;       // USB-C plug overmold recess (most cables <= 12.4 x 6.5)
plug_h = 6.8;
plug_wall = 0.8;     // wall left at the port: receptacle face to outer face

/* [strap] */
strap_w = 40.0;      // strap width (along X)
strap_t = 2.5;       // strap thickness, elastic with silicone grip
slot_clr = 0.6;
bar_w = 3.0;         // outer bar of each slot
flange_t = 2.4;
slot_end = 3.0;      // frame beyond each slot end

$fn = 40;
eps = 0.01;

// ---- derived ----------------------------------------------------------------
cav_l = max(clr + batt_l + wire_room, usb_protrusion + xiao_l + clr);
cav_w = max(batt_w, xiao_w) + 2 * clr;
z_floor = floor_t;                                       // cavity floor
z_batt_top = z_floor + mag_layer + batt_t + batt_swell;
z_pcb = z_batt_top + foam_t;                             // PCB underside
z_usb = z_pcb + pcb_t + usb_h / 2;                       // port centre = split
z_cav_top = z_pcb + pcb_t + xiao_top_h + clr;
body_l = cav_l + 2 * wall;
body_w = cav_w + 2 * wall;
body_h = z_cav_top + top_t;
z_split = z_usb;
slot_w = strap_t + slot_clr;
slot_l = strap_w + 2 * slot_clr;
flange_l = slot_l + 2 * slot_end;
flange_w = body_w + 2 * (slot_w + bar_w);

// cavity coordinates: x from the inner face of the USB-end wall, y centred
cav_x0 = -body_l / 2 + wall;
function feat(p) = [cav_x0 + usb_protrusion + p[0], (mirror_features ? -1 : 1) * p[1]];

echo(str("hipimu case: body ", body_l, " x ", body_w, " x ", body_h, " mm; flange ",
         flange_l, " x ", flange_w, " x ", flange_t, " mm; split at z = ", z_split));

// ---- helpers -----------------------------------------------------------------
module rrect(l, w, r) { offset(r = r) square([l - 2 * r, w - 2 * r], center = true); }
module rbox(l, w, h, r) { linear_extrude(h) rrect(l, w, r); }

// port opening + plug recess, cut through the -X wall, centred on z_usb
module port_cut() {
    y = 0;
    translate([-body_l / 2 - 1, y - (usb_w + 2 * clr) / 2, z_usb - (usb_h + 2 * clr) / 2])
        cube([wall + 2, usb_w + 2 * clr, usb_h + 2 * clr]);
    translate([-body_l / 2 - 1, y - plug_w / 2, z_usb - plug_h / 2])
        cube([1 + wall - plug_wall, plug_w, plug_h]);
}

// ---- base: flange with strap slots, walls up to the split --------------------
module base() {
    difference() {
        union() {
            rbox(flange_l, flange_w, flange_t, r_out);
            rbox(body_l, body_w, z_split, r_out);
        }
        // cavity
        translate([0, 0, z_floor]) rbox(cav_l, cav_w, body_h, 0.8);
        // strap slots, rounded ends
        for (s = [-1, 1])
            translate([0, s * (body_w / 2 + slot_w / 2), -1])
                linear_extrude(flange_t + 2) rrect(slot_l, slot_w, slot_w / 2 - eps);
        port_cut();
    }
}

// ---- lid: top, skirt down to the split, friction lip into the base ------------
lip_in_l = cav_l - 2 * (fit + lip_t);
lip_in_w = cav_w - 2 * (fit + lip_t);
ledge_h = 1.0;       // solid ring joining the lip to the skirt

module led_tubes() {
    for (p = [rgb_led_pos, charge_led_pos])
        translate([feat(p)[0], feat(p)[1], z_pcb + pcb_t + led_tube_gap])
            cylinder(d = led_hole_d + 1.2, h = body_h);
}

module board_stops() {
    for (s = [-1, 1])
        translate([cav_x0 + usb_protrusion + xiao_l + 0.2, s * xiao_w / 4 - 1, z_pcb + 0.2])
            cube([1.2, 2, body_h]);
}

module lid() {
    difference() {
        union() {
            translate([0, 0, z_split]) rbox(body_l, body_w, body_h - z_split, r_out);
            translate([0, 0, z_split - lip_h]) rbox(cav_l - 2 * fit, cav_w - 2 * fit, lip_h + eps, 0.8);
            intersection() { /* tubes and stops hang below the lid into the base */
                union() { led_tubes(); board_stops(); }
                rbox(cav_l, cav_w, z_cav_top + eps, 0.8);
            }
        }
        // inside: the lip ring and ledge, then the full cavity above the ledge;
        // the LED tubes and the board stops are left standing
        difference() {
            union() {
                translate([0, 0, z_split - lip_h - 1]) rbox(lip_in_l, lip_in_w, lip_h + 1 + ledge_h, 0.4);
                translate([0, 0, z_split + ledge_h - eps]) rbox(cav_l, cav_w, z_cav_top - z_split - ledge_h + eps, 0.8);
            }
            union() { led_tubes(); board_stops(); }
        }
        // lip and ledge cleared round the USB receptacle (it touches the wall)
        translate([cav_x0 - eps, -(usb_w + 2 * clr + 1) / 2, z_split - lip_h - 1])
            cube([fit + lip_t + 0.5, usb_w + 2 * clr + 1, lip_h + 1 + ledge_h + eps]);
        port_cut();
        // LED light pipes (closed by a thin window if led_window > 0)
        for (p = [rgb_led_pos, charge_led_pos])
            translate([feat(p)[0], feat(p)[1], z_pcb])
                cylinder(d = led_hole_d, h = body_h - z_pcb - led_window);
        // reset button access
        translate([feat(reset_pos)[0], feat(reset_pos)[1], z_pcb])
            cylinder(d = reset_hole_d, h = body_h);
    }
}

// ---- stand-ins for a fit check (part = "assembly") -----------------------------
module contents() {
    color("silver") translate([cav_x0 + clr, -batt_w / 2, z_floor + mag_layer]) cube([batt_l, batt_w, batt_t]);
    color("green") translate([cav_x0 + usb_protrusion, -xiao_w / 2, z_pcb]) cube([xiao_l, xiao_w, pcb_t]);
    color("gray") translate([cav_x0, -usb_w / 2, z_pcb + pcb_t]) cube([7.3, usb_w, usb_h]);
}

if (part == "base") {
    base();
} else if (part == "lid") {
    translate([0, 0, body_h]) rotate([180, 0, 0]) lid(); // top face on the bed
} else if (part == "assembly") {
    base();
    color("lightblue", 0.5) lid();
    contents();
} else {
    base();
    translate([0, flange_w / 2 + body_w / 2 + 5, body_h]) rotate([180, 0, 0]) lid();
}
