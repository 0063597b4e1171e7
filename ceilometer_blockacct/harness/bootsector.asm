; Licensed under the Apache License, Version 2.0 (the "License").
;
; A kernel-less guest: a 512-byte boot sector that performs a block I/O
; workload known in advance, then prints DONE on COM1 and halts.
;
; Assembled by ceilometer_blockacct/harness/guest.py with
; "nasm -f bin"; the harness appends the workload TABLE (little-endian,
; layout below) right after the code and the 0x55AA signature at 510.
;
;   header:  u16 rounds (0 = forever)   u32 pace_us   u8 ndisks
;   per disk (DISK_SIZE bytes):
;     +0  u8  BIOS drive (0x80 + boot order - 1)
;     +1  u8  ATA drive select (0xA0 master, 0xB0 slave; 0 = not IDE)
;     +2  u16 ATA command block base (0x1F0 / 0x170; 0 = no flush)
;     +4  u16 sectors per read/write request
;     +6  u16 reads        +8  u32 first read LBA
;     +12 u16 writes       +14 u32 first write LBA
;     +18 u16 invalid reads  +20 u16 invalid writes  +22 u32 last LBA
;     +26 u16 flushes (ATA FLUSH CACHE 0xE7 by port I/O, IDE only)
;     +28 u16 failing reads  +30 u16 failing writes  +32 u32 failing LBA
;
; Each round does, per disk: reads (LBA advancing), writes (LBA
; advancing), invalid reads and writes (2 sectors starting at the last
; LBA: SeaBIOS only checks the first), reads and writes at the failing
; LBA, flushes; then prints "." and, if pace_us, waits with int 15h/86h.
; Every int 13h or ATA command that reports an error prints "x".

bits 16
org 0x7c00

D_DRIVE     equ 0
D_ATASEL    equ 1
D_ATABASE   equ 2
D_SECTORS   equ 4
D_READS     equ 6
D_RLBA      equ 8
D_WRITES    equ 12
D_WLBA      equ 14
D_INVR      equ 18
D_INVW      equ 20
D_LAST      equ 22
D_FLUSHES   equ 26
D_FAILR     equ 28
D_FAILW     equ 30
D_FAILLBA   equ 32
DISK_SIZE   equ 36

BUF_SEG     equ 0x1000          ; I/O buffer at 64 KiB, up to 127 sectors

start:
    cli
    xor ax, ax
    mov ds, ax
    mov es, ax
    mov ss, ax
    mov sp, 0x7c00
    sti                         ; int 15h/86h needs the timer interrupt
    cld

round:
    mov si, table + 7
    movzx cx, byte [table + 6]
.disk:
    push cx
    push si
    call do_disk
    pop si
    pop cx
    add si, DISK_SIZE
    loop .disk
    mov al, '.'
    call putc
    mov ax, [table]             ; rounds left; 0 = forever
    test ax, ax
    jz .pace
    dec ax
    mov [table], ax
    jz done
.pace:
    mov dx, [table + 2]         ; int 15h/86h: CX:DX microseconds
    mov cx, [table + 4]
    mov ax, cx
    or ax, dx
    jz round
    mov ah, 0x86
    int 0x15
    jmp round

done:
    mov si, msg_done
.next:
    lodsb
    test al, al
    jz .halt
    call putc
    jmp .next
.halt:
    cli
    hlt
    jmp .halt

; do_disk: SI = disk entry.
do_disk:
    mov di, [si + D_SECTORS]
    mov bp, 1                   ; advance the LBA after each request
    mov ah, 0x42
    mov cx, [si + D_READS]
    mov ebx, [si + D_RLBA]
    call xfer
    mov ah, 0x43
    mov cx, [si + D_WRITES]
    mov ebx, [si + D_WLBA]
    call xfer
    xor bp, bp                  ; the rest always hit the same LBA
    mov di, 2
    mov ah, 0x42
    mov cx, [si + D_INVR]
    mov ebx, [si + D_LAST]
    call xfer
    mov ah, 0x43
    mov cx, [si + D_INVW]
    call xfer
    mov di, [si + D_SECTORS]
    mov ah, 0x42
    mov cx, [si + D_FAILR]
    mov ebx, [si + D_FAILLBA]
    call xfer
    mov ah, 0x43
    mov cx, [si + D_FAILW]
    call xfer
    mov cx, [si + D_FLUSHES]
    jmp flush

; xfer: AH = 42h/43h, CX = requests, EBX = first LBA, DI = sectors,
; BP = advance the LBA; SI = disk entry.
xfer:
    jcxz .ret
.next:
    mov [dap_count], di
    mov [dap_lba], ebx
    pushad
    mov dl, [si + D_DRIVE]
    mov si, dap
    int 0x13
    popad                       ; keeps the carry flag of int 13h
    jnc .ok
    push ax
    mov al, 'x'
    call putc
    pop ax
.ok:
    test bp, bp
    jz .same
    movzx edx, di
    add ebx, edx
.same:
    loop .next
.ret:
    ret

; flush: CX = ATA FLUSH CACHE commands; SI = disk entry.
flush:
    jcxz .ret
    mov bx, [si + D_ATABASE]
    test bx, bx
    jz .ret
.next:
    lea dx, [bx + 0x206]        ; device control: nIEN, we poll
    mov al, 0x02
    out dx, al
    lea dx, [bx + 6]
    mov al, [si + D_ATASEL]
    out dx, al
    call ata_wait
    mov al, 0xE7
    out dx, al                  ; DX = base + 7 (command) after ata_wait
    call ata_wait
    test al, 0x01               ; ERR
    jz .ok
    mov al, 'x'
    call putc
.ok:
    loop .next
.ret:
    ret

; ata_wait: BX = ATA base; waits for BSY clear; AL = status, DX = base+7.
ata_wait:
    lea dx, [bx + 7]
.poll:
    in al, dx
    test al, 0x80
    jnz .poll
    ret

; putc: AL to COM1.
putc:
    push dx
    mov dx, 0x3f8
    out dx, al
    pop dx
    ret

msg_done: db "DONE", 13, 10, 0

align 4
dap:        db 0x10, 0
dap_count:  dw 0
            dw 0, BUF_SEG       ; buffer offset, segment
dap_lba:    dd 0, 0

table:                          ; appended by the harness
